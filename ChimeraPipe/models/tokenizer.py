"""A CLIP tokenizer built offline: open_clip's bundled BPE written as vocab.json + merges.txt for
transformers' CLIPTokenizer, with the real CLIP token ids."""
from __future__ import annotations

import gzip
import json
from pathlib import Path


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte-to-printable-character table (the BPE's alphabet)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = printable[:], 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars), strict=True))


def write_clip_tokenizer_files(out_dir: Path) -> None:
    """Convert open_clip's bundled BPE merges into vocab.json + merges.txt for transformers' CLIPTokenizer.

    The ids follow CLIP's construction (bytes, bytes+'</w>', merges, then the two specials),
    so they equal those of the real SD / OpenAI CLIP tokenizer.
    """
    import open_clip

    bpe_path = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    with gzip.open(bpe_path, "rt", encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    merges = lines[1:49152 - 256 - 2 + 1]
    alphabet = list(_bytes_to_unicode().values())
    tokens = alphabet + [c + "</w>" for c in alphabet] + ["".join(m.split()) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    (out_dir / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False))
    (out_dir / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")


def build_clip_tokenizer(out_dir: Path, max_length: int = 77):
    from transformers import CLIPTokenizer

    out_dir.mkdir(parents=True, exist_ok=True)
    write_clip_tokenizer_files(out_dir)
    # SD 2.x pads with "!" (id 0), as its released tokenizer does.
    tokenizer = CLIPTokenizer(str(out_dir / "vocab.json"), str(out_dir / "merges.txt"),
                              pad_token="!", model_max_length=max_length)
    tokenizer.save_pretrained(out_dir)
    return tokenizer
