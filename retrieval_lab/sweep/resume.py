"""Resume: find configurations already FINISHED, and end runs orphaned by a killed process as KILLED.

A run is orphaned when it is RUNNING, was opened on this host (tag `host`) by a process (tag `pid`) that no longer
exists. Runs opened on other hosts are left alone: their process cannot be checked from here. Two exceptions need no
process check: an earlier attempt of the same job of the same sweep (a Ray task retried after its worker died, a
SLURM job requeued), found by the job itself, and a job the launcher reports lost.
"""
from __future__ import annotations

from retrieval_lab.sweep.state import host, pid_alive


def find_finished(client, experiment_id: str, config_hash: str):
    """The newest FINISHED run of this configuration hash, or None."""
    runs = client.search_runs([experiment_id],
                              filter_string=f"tags.config_hash = '{config_hash}' and attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0] if runs else None


def mark_orphans(client, experiment_id: str, config_hash: str | None = None,
                 attempt_of: tuple[str, int] | None = None) -> list[str]:
    """Set orphaned RUNNING runs (all of the experiment's, or one configuration's) to KILLED; return their ids.
    `attempt_of=(sweep_id, job_num)`: the caller is that job, so that job's earlier RUNNING runs are dead attempts,
    on whatever host they ran."""
    query = "attributes.status = 'RUNNING'"
    if config_hash:
        query += f" and tags.config_hash = '{config_hash}'"
    killed = []
    here = host()
    for run in client.search_runs([experiment_id], filter_string=query, max_results=5000):
        tags = run.data.tags
        job = (tags.get("sweep_id"), tags.get("job_num"))
        if attempt_of is not None and job == (attempt_of[0], str(attempt_of[1])):
            reason = f"an earlier attempt of job {attempt_of[1]} (process {tags.get('pid')} on {tags.get('host')})"
        elif tags.get("host") != here or not tags.get("pid", "").isdigit() or pid_alive(int(tags["pid"])):
            continue
        else:
            reason = f"process {tags['pid']} on {here} ended without closing it"
        client.set_tag(run.info.run_id, "killed_reason", reason)
        client.set_terminated(run.info.run_id, "KILLED")
        killed.append(run.info.run_id)
    return killed


def kill_lost_job_runs(ctx, job_nums: list[int], reason: str) -> list[str]:
    """Mark the RUNNING runs of jobs a launcher reports lost (their worker died for good) KILLED."""
    from retrieval_lab import tracking

    client = tracking.client({"uri": ctx.tracking_uri} if ctx.tracking_uri else None)
    killed = []
    for num in job_nums:
        query = f"tags.sweep_id = '{ctx.sweep_id}' and tags.job_num = '{num}' and attributes.status = 'RUNNING'"
        for run in client.search_runs([ctx.experiment_id], filter_string=query, max_results=100):
            client.set_tag(run.info.run_id, "killed_reason", reason)
            client.set_terminated(run.info.run_id, "KILLED")
            killed.append(run.info.run_id)
    return killed
