"""A laptop-scale base model that knows something: rendered digits (the source domain) and the
pretraining of a tiny text-to-image pipeline in Stable Diffusion's layout on them."""
