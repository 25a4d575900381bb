#!/usr/bin/env bash
# A real one-node SLURM cluster with accounting, for tests: munged, mariadbd, slurmdbd, slurmctld, slurmd
# started by hand (Debian's packages; apt does not start services here), one fake GPU so `gpu=1` jobs schedule.
#
#   tests/slurm/cluster.sh start   # install if needed, configure under $SLURM_TEST_DIR, start, wait for idle
#   tests/slurm/cluster.sh stop    # stop exactly the processes this script started (by PID)
#   tests/slurm/cluster.sh env     # print the export line clients need (SLURM_CONF)
#
# Needs root on Debian 12. State, logs and the database live under $SLURM_TEST_DIR.
set -euo pipefail

DIR=${SLURM_TEST_DIR:-/tmp/chimerapipe-slurm}
CONF=$DIR/etc/slurm.conf
PIDS=$DIR/pids
CLUSTER=chimerapipe
export SLURM_CONF=$CONF

log() { echo "[slurm-cluster] $*" >&2; }

install_packages() {
    local missing=()
    for cmd in slurmctld slurmd slurmdbd munged mariadbd sacct; do
        command -v "$cmd" >/dev/null || missing+=("$cmd")
    done
    [ ${#missing[@]} -eq 0 ] && return
    log "installing slurm-wlm slurmdbd munge mariadb-server (missing: ${missing[*]})"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm slurmdbd munge mariadb-server >/dev/null
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local limit=$1 what=$2
    shift 2
    for _ in $(seq "$limit"); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 1
    done
    log "timed out waiting for $what"
    return 1
}

remember() { echo "$1 $2" >>"$PIDS"; }  # name pid

write_configs() {
    mkdir -p "$DIR"/{etc,state,spool,log,db}
    local node cpus mem host
    host=$(hostname -s)
    node=$(slurmd -C | head -n 1)
    cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$node")
    mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node")
    cat >"$CONF" <<EOF
ClusterName=$CLUSTER
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
ReturnToService=2
MinJobAge=300
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=$host CPUs=$cpus RealMemory=$mem Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    echo "NodeName=$host Name=gpu File=/dev/null" >"$DIR/etc/gres.conf"
    cat >"$DIR/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=$DIR/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=chimerapipe
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$DIR/etc/slurmdbd.conf"
    # Job steps (srun inside sbatch) read the default path, not the submitter's SLURM_CONF: link it there,
    # but never over a configuration this script did not write.
    mkdir -p /etc/slurm
    for name in slurm.conf gres.conf slurmdbd.conf; do
        if [ -e "/etc/slurm/$name" ] && [ "$(readlink "/etc/slurm/$name")" != "$DIR/etc/$name" ]; then
            log "/etc/slurm/$name exists and is not ours; refusing to replace it"
            return 1
        fi
        ln -sfn "$DIR/etc/$name" "/etc/slurm/$name"
    done
}

start_munge() {
    mkdir -p /run/munge /var/lib/munge /var/log/munge /etc/munge
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chmod 400 /etc/munge/munge.key
    if pgrep -x munged >/dev/null; then
        log "munged already running; using it"
        return
    fi
    munged --force --pid-file="$DIR/munged.pid" --socket=/run/munge/munge.socket.2
    wait_for 10 munged test -s "$DIR/munged.pid"
    remember munged "$(cat "$DIR/munged.pid")"
}

start_mariadb() {
    mkdir -p /run/mysqld
    if [ ! -d "$DIR/db/mysql" ]; then
        mariadb-install-db --user=root --datadir="$DIR/db" --auth-root-authentication-method=socket >/dev/null
    fi
    setsid mariadbd --user=root --datadir="$DIR/db" --socket=/run/mysqld/mysqld.sock --port=3306 \
        --bind-address=127.0.0.1 --pid-file="$DIR/mariadbd.pid" --log-error="$DIR/log/mariadb.log" \
        </dev/null >/dev/null 2>&1 &
    wait_for 60 mariadbd mariadb --socket=/run/mysqld/mysqld.sock -e "select 1"
    remember mariadbd "$(cat "$DIR/mariadbd.pid")"
    mariadb --socket=/run/mysqld/mysqld.sock <<'EOF'
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'chimerapipe';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
EOF
}

start_slurm() {
    slurmdbd
    wait_for 30 slurmdbd sacctmgr -n show cluster
    remember slurmdbd "$(cat "$DIR/slurmdbd.pid")"
    sacctmgr -i add cluster "$CLUSTER" >/dev/null || true
    sacctmgr -i add account chimerapipe Cluster="$CLUSTER" >/dev/null || true
    sacctmgr -i add user root Account=chimerapipe Cluster="$CLUSTER" >/dev/null || true
    slurmctld
    wait_for 30 slurmctld scontrol ping
    remember slurmctld "$(cat "$DIR/slurmctld.pid")"
    slurmd
    wait_for 30 slurmd test -s "$DIR/slurmd.pid"
    remember slurmd "$(cat "$DIR/slurmd.pid")"
    wait_for 60 "node idle" bash -c "sinfo -h -o %T | grep -qx idle"
}

stop() {
    [ -f "$PIDS" ] || { log "nothing to stop"; return 0; }
    # Reverse start order: the node and controller first, the database last.
    tac "$PIDS" | while read -r name pid; do
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid"
            for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
            log "stopped $name ($pid)"
        fi
    done
    rm -f "$PIDS"
    for name in slurm.conf gres.conf slurmdbd.conf; do
        [ "$(readlink "/etc/slurm/$name" 2>/dev/null)" = "$DIR/etc/$name" ] && rm -f "/etc/slurm/$name"
    done
    return 0
}

case "${1:-}" in
    start)
        [ "$(id -u)" -eq 0 ] || { log "must run as root"; exit 1; }
        [ -f "$PIDS" ] && stop
        install_packages
        write_configs
        : >"$PIDS"
        trap 'log "start failed; stopping what was started"; stop' ERR
        start_munge
        start_mariadb
        start_slurm
        trap - ERR
        log "cluster $CLUSTER up: $(sinfo -h -o '%P %D %T %G')"
        ;;
    stop) stop ;;
    env) echo "export SLURM_CONF=$CONF" ;;
    *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
