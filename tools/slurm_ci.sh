#!/usr/bin/env bash
# SLURM smoke test on one machine: a private single-node SLURM cluster on
# 127.0.0.1 runs the tiny config through profiles/slurm, and its predictions and
# metrics must equal a local --cores 2 run of the same config.
#
#   sudo tools/slurm_ci.sh          (needs root: apt-get and the daemons)
#
# Steps: (a) install Debian's slurm-wlm + munge if missing; (b) write slurm.conf
# and cgroup.conf under a temp dir (SLURM_CONF points there, /etc/slurm is not
# touched) and create /etc/munge/munge.key if missing; (c) start munged (unless
# one already answers), slurmctld and a configless slurmd (which links
# /run/slurm/conf to its cache, removed again on exit), wait until the node is idle;
# (d) run the workflow under SLURM; (e) check that every non-local job was a SLURM
# job that exited 0, that every prediction record is `ok` with parsed answers,
# and compare the outputs with a local run; (f) on exit, cancel
# leftover jobs and stop exactly the daemons started here (by PID).
# Every wait is bounded; the last line is "SLURM_CI: PASS|FAIL ... total N s".
#
# Environment: SLURM_CI_KEEP=1 keeps the temp dir; SLURM_CI_TIMEOUT (s, default
# 900: both runs and the test suite stay inside CI's 90 minutes even if one hangs) bounds
# each Snakemake run; SNAKEMAKE (default <repo>/.venv/bin/snakemake).
set -uo pipefail

START=$(date +%s)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PY:-$REPO/.venv/bin/python}
SNAKEMAKE=${SNAKEMAKE:-$REPO/.venv/bin/snakemake}
CONFIG=$REPO/.test/config/config.yaml
RUN_TIMEOUT=${SLURM_CI_TIMEOUT:-900}
WORK=$(mktemp -d /tmp/slurm_ci.XXXXXX)
ETC=$WORK/etc
STATE=$WORK/state
LOGS=$WORK/logs
mkdir -p "$ETC" "$STATE/ctld" "$STATE/d" "$LOGS"
export SLURM_CONF=$ETC/slurm.conf

STARTED_PIDS=()      # "name:pid" of every daemon this script started
RESULT=FAIL
REASON="did not finish"
POLICY_RC_CREATED=0

log() { printf '[slurm_ci %4ds] %s\n' "$(($(date +%s) - START))" "$*"; }
fail() { REASON=$*; log "FAIL: $*"; exit 1; }

cleanup() {
  local rc=$? entry name pid i
  trap - EXIT INT TERM
  if [ "$POLICY_RC_CREATED" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  # Cancel whatever our private cluster still runs, before its daemons go away.
  if [ ${#STARTED_PIDS[@]} -gt 0 ] && command -v scancel >/dev/null; then
    timeout 10 scancel --full --quiet --user=root 2>/dev/null || true
    for i in $(seq 1 20); do
      [ -z "$(timeout 5 squeue -h -t PD,R,CG -o %i 2>/dev/null)" ] && break
      sleep 1
    done
  fi
  # Stop exactly the daemons started here, newest first: TERM, then KILL after 20 s.
  for ((i = ${#STARTED_PIDS[@]} - 1; i >= 0; i--)); do
    entry=${STARTED_PIDS[$i]}; name=${entry%%:*}; pid=${entry##*:}
    kill -0 "$pid" 2>/dev/null || continue
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name ($pid) ignored SIGTERM; SIGKILL"
      kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    log "stopped $name (pid $pid)"
  done
  # slurmd leaves its configless-cache link behind; remove it if it is ours.
  case "$(readlink /run/slurm/conf 2>/dev/null)" in "$WORK"/*) rm -f /run/slurm/conf ;; esac
  if [ "$RESULT" = PASS ] && [ "${SLURM_CI_KEEP:-0}" != 1 ]; then
    rm -rf "$WORK"
  else
    log "kept $WORK (daemon logs in $LOGS, Snakemake logs in $WORK/*.log)"
  fi
  if [ "$RESULT" = PASS ]; then
    rc=0
    echo "SLURM_CI: PASS ($REASON) total $(($(date +%s) - START)) s"
  else
    [ "$rc" = 0 ] && rc=1
    echo "SLURM_CI: FAIL ($REASON) total $(($(date +%s) - START)) s"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'REASON="interrupted"; exit 130' INT TERM

[ "$(id -u)" = 0 ] || fail "needs root (apt-get, munged, slurmd)"
[ -x "$SNAKEMAKE" ] || fail "no $SNAKEMAKE (run make setup)"
"$PY" -c "import snakemake_executor_plugin_slurm" 2>/dev/null ||
  fail "snakemake-executor-plugin-slurm missing in $REPO/.venv (pip install snakemake-executor-plugin-slurm==2.8.0)"

# --- (a) packages -------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null ||
   ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  log "installing slurm-wlm and munge"
  if [ ! -e /usr/sbin/policy-rc.d ]; then   # no service may start during install
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    POLICY_RC_CREATED=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  timeout 300 apt-get update -qq || fail "apt-get update failed"
  timeout 900 apt-get install -y -qq --no-install-recommends slurm-wlm munge >"$LOGS/apt.log" 2>&1 ||
    fail "apt-get install slurm-wlm munge failed (see $LOGS/apt.log)"
  if [ "$POLICY_RC_CREATED" = 1 ]; then rm -f /usr/sbin/policy-rc.d; POLICY_RC_CREATED=0; fi
fi
log "Debian packages: slurm-wlm $(dpkg-query -W -f='${Version}' slurm-wlm 2>/dev/null), munge $(dpkg-query -W -f='${Version}' munge 2>/dev/null)"
# Jobs find the configuration through slurmd's configless cache (/run/slurm/conf):
# the jobstep plugin drops every SLURM_* variable, SLURM_CONF included, before
# its nested srun. A system /etc/slurm/slurm.conf would come first there.
[ -e /etc/slurm/slurm.conf ] && fail "/etc/slurm/slurm.conf exists: jobs' srun would read it instead of ours"

# --- (b) configuration ----------------------------------------------------------
NODE=$(hostname -s)
CPUS=$(nproc)
MEM_TOTAL=$(free -m | awk '/^Mem:/{print $2}')
MARGIN=$((MEM_TOTAL / 10 > 1024 ? MEM_TOTAL / 10 : 1024))
REAL_MEM=$((MEM_TOTAL - MARGIN))
[ "$REAL_MEM" -ge 4000 ] || fail "only $REAL_MEM MB for jobs; run_inference asks for 4000"
for port in 6817 6818; do   # another slurmctld/slurmd would take our jobs or clash
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    fail "port $port already in use (another SLURM running?)"
  fi
done
cat >"$ETC/slurm.conf" <<EOF
# Written by tools/slurm_ci.sh: one node on 127.0.0.1, no accounting database.
ClusterName=safescaleci
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
# squeue is the job-status source: keep finished jobs visible for 5 minutes.
MinJobAge=300
KillWait=5
InactiveLimit=0
SlurmctldTimeout=60
SlurmdTimeout=60
SchedulerType=sched/backfill
# slurmd fetches this file from slurmctld and caches it under /run/slurm/conf,
# where srun inside a job finds it without SLURM_CONF.
SlurmctldParameters=enable_configless
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$REAL_MEM State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
# Nothing here uses cgroups (proctrack/linuxproc, task/none); this only keeps
# slurmd from probing or mounting them in a container.
cat >"$ETC/cgroup.conf" <<EOF
CgroupAutomount=no
ConstrainCores=no
ConstrainRAMSpace=no
ConstrainSwapSpace=no
ConstrainDevices=no
EOF
log "node $NODE: CPUs=$CPUS RealMemory=$REAL_MEM MB; config in $ETC"

# --- (c) daemons ------------------------------------------------------------------
start_daemon() {   # name, command...: start in the background, record the PID
  local name=$1; shift
  "$@" >"$LOGS/$name.out" 2>&1 &
  STARTED_PIDS+=("$name:$!")
  log "started $name (pid $!)"
}
wait_for() {       # seconds, description, command...: poll once a second
  local limit=$1 what=$2; shift 2
  for _ in $(seq 1 "$limit"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  fail "$what not ready after ${limit} s (logs: $LOGS)"
}
munge_ok() { munge -n | unmunge; }

if munge_ok >/dev/null 2>&1; then
  log "munged already running (left alone)"
else
  if [ ! -s /etc/munge/munge.key ]; then
    log "creating /etc/munge/munge.key"
    mkdir -p /etc/munge
    mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null ||
      dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge /var/lib/munge /var/log/munge
  chown munge:munge /run/munge /var/lib/munge /var/log/munge
  chmod 755 /run/munge
  start_daemon munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground
  wait_for 20 munged munge_ok
fi
start_daemon slurmctld slurmctld -D -f "$SLURM_CONF"
wait_for 30 slurmctld scontrol ping
start_daemon slurmd slurmd -D --conf-server 127.0.0.1:6817
node_idle() { [ "$(sinfo -h -N -n "$NODE" -o %T)" = idle ]; }
wait_for 60 "node $NODE idle" node_idle
log "cluster up: $(sinfo -h -o '%P %a %D %T %c CPUs %m MB')"

# --- (d) the workflow under SLURM ------------------------------------------------
SLURM_DIR=$WORK/slurm_run
LOCAL_DIR=$WORK/local_run
mkdir -p "$SLURM_DIR" "$LOCAL_DIR"
log "snakemake --profile profiles/slurm in $SLURM_DIR"
T0=$(date +%s)
# --workflow-profile none: profiles/default (applied automatically) would replace
# the SLURM profile's default-resources. timeout --foreground sends one SIGINT, so
# Snakemake cancels its SLURM jobs; -k 60 kills it if that does not end it.
(cd "$WORK" && timeout --foreground -s INT -k 60 "$RUN_TIMEOUT" "$SNAKEMAKE" \
  -s "$REPO/Snakefile" -d "$SLURM_DIR" --configfile "$CONFIG" \
  --profile "$REPO/profiles/slurm" --workflow-profile none \
  --slurm-status-command squeue \
  --slurm-init-seconds-before-status-checks 2 --seconds-between-status-checks 2 \
  --slurm-keep-successful-logs) >"$WORK/slurm.log" 2>&1
SLURM_RC=$?
SLURM_S=$(($(date +%s) - T0))
[ "$SLURM_RC" = 0 ] || { tail -40 "$WORK/slurm.log"; fail "SLURM run exited $SLURM_RC after $SLURM_S s"; }
log "SLURM run done in $SLURM_S s"

# --- (e) the same config locally, then the checks ---------------------------------
log "snakemake --cores 2 in $LOCAL_DIR"
T0=$(date +%s)
(cd "$WORK" && timeout --foreground -s INT -k 60 "$RUN_TIMEOUT" "$SNAKEMAKE" \
  -s "$REPO/Snakefile" -d "$LOCAL_DIR" --configfile "$CONFIG" --cores 2) >"$WORK/local.log" 2>&1
LOCAL_RC=$?
LOCAL_S=$(($(date +%s) - T0))
[ "$LOCAL_RC" = 0 ] || { tail -40 "$WORK/local.log"; fail "local run exited $LOCAL_RC after $LOCAL_S s"; }
log "local run done in $LOCAL_S s"

CHECK=$("$PY" - "$WORK/slurm.log" "$SLURM_DIR" "$LOCAL_DIR" "$LOGS/slurmctld.log" <<'PYEOF'
"""Every non-local job a SLURM job that exited 0; outputs equal to the local run."""
import json
import re
import sys
from pathlib import Path

import pandas as pd

log_text, slurm_dir, local_dir = Path(sys.argv[1]).read_text(), Path(sys.argv[2]), Path(sys.argv[3])
ctld_log = Path(sys.argv[4]).read_text()
problems = []

# Jobs as Snakemake scheduled them: "rule X:" (remote) or "localrule X:", then "jobid: N".
remote, local, outputs, current, current_out = {}, {}, {}, None, []
for line in log_text.splitlines():
    m = re.match(r"^(local)?rule (\w+):$", line)
    if m:
        current, current_out = (bool(m.group(1)), m.group(2)), []
        continue
    m = re.match(r"^\s+output: (.+)$", line)
    if m and current:
        current_out = [x.strip() for x in m.group(1).split(",") if x.strip()]
        continue
    m = re.match(r"^\s+jobid: (\d+)$", line)
    if m and current:
        (local if current[0] else remote)[int(m.group(1))] = current[1]
        outputs[int(m.group(1))] = current_out
        current = None
submitted = {
    int(j): int(s)
    for j, s in re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", log_text)
}
if not remote:
    problems.append("no remote jobs found in the Snakemake log")
missing = sorted(set(remote) - set(submitted))
if missing:
    problems.append(f"jobs not submitted to SLURM: {[(j, remote[j]) for j in missing]}")
slurm_logs = {p.stem for p in (slurm_dir / ".snakemake" / "slurm_logs").rglob("*.log")}
job_lines, n_outputs = [], 0
for job, sid in sorted(submitted.items(), key=lambda kv: kv[1]):
    exited_0 = re.search(rf"_job_complete: JobId={sid} WEXITSTATUS 0\b", ctld_log) is not None
    if str(sid) not in slurm_logs:
        problems.append(f"no .snakemake/slurm_logs/**/{sid}.log for job {job}")
    if not exited_0:
        problems.append(f"slurmctld did not record SLURM job {sid} exiting 0")
    absent = [o for o in outputs.get(job, []) if not (slurm_dir / o).exists()]
    if absent:
        problems.append(f"SLURM job {sid} ({remote.get(job)}) left outputs missing: {absent}")
    n_outputs += len(outputs.get(job, []))
    first = outputs.get(job, ["?"])[0] if outputs.get(job) else "-"
    job_lines.append(
        f"  SLURM job {sid:>4}  snakemake job {job:>3}  {remote.get(job, '?'):<22} "
        f"exit {'0' if exited_0 else '?'}  {len(outputs.get(job, []))} output(s), e.g. {first}"
    )


def strip_latency(obj):
    if isinstance(obj, dict):
        return {k: strip_latency(v) for k, v in obj.items() if "latency" not in k}
    if isinstance(obj, list):
        return [strip_latency(v) for v in obj]
    return obj


def rel_files(root):
    return sorted(p.relative_to(root) for p in root.glob("results/predictions/*/*.jsonl"))


pred_files = rel_files(local_dir)
if not pred_files or pred_files != rel_files(slurm_dir):
    problems.append(f"prediction files differ: {rel_files(slurm_dir)} vs {pred_files}")
for rel in pred_files:
    a = [strip_latency(json.loads(x)) for x in (slurm_dir / rel).read_text().splitlines() if x]
    b = [strip_latency(json.loads(x)) for x in (local_dir / rel).read_text().splitlines() if x]
    if a != b:
        problems.append(f"{rel} differs from the local run")
    # Equal runs prove nothing if every question failed: the tiny config answers all.
    for run, recs in (("SLURM", a), ("local", b)):
        not_ok = [f"{r['question_id']}: {r['status']}" for r in recs if r["status"] != "ok"]
        if not recs or not_ok:
            problems.append(f"{run} {rel}: records not ok: {not_ok[:3] or 'none at all'}")
        elif not any(r["greedy"]["letter"] for r in recs):
            problems.append(f"{run} {rel}: no greedy answer parsed to a letter")
metrics = []
for root in (slurm_dir, local_dir):
    frame = pd.read_csv(root / "results/metrics/metrics.csv")
    metrics.append(frame[[c for c in frame.columns if "latency" not in c]])
try:
    pd.testing.assert_frame_equal(metrics[0], metrics[1], check_exact=True)
except AssertionError as err:
    problems.append(f"metrics.csv differs: {str(err)[:400]}")

print(f"{len(submitted)} SLURM jobs (ids {min(submitted.values(), default=0)}-"
      f"{max(submitted.values(), default=0)}), {len(local)} local rule jobs "
      f"({', '.join(sorted(set(local.values())))}); {len(pred_files)} prediction files "
      f"and metrics.csv ({len(metrics[1])} rows) equal the local run; "
      f"{n_outputs} outputs of SLURM jobs present")
print("\n".join(job_lines))
for p in problems:
    print("PROBLEM:", p)
sys.exit(1 if problems else 0)
PYEOF
)
CHECK_RC=$?
printf '%s\n' "$CHECK"
[ "$CHECK_RC" = 0 ] || fail "checks failed: $(grep -c PROBLEM <<<"$CHECK") problem(s)"
RESULT=PASS
REASON="$(head -1 <<<"$CHECK" | cut -d';' -f1); SLURM run ${SLURM_S} s, local run ${LOCAL_S} s"
