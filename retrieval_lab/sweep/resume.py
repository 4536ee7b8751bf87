"""Resume: find configurations already FINISHED, and end runs orphaned by a killed process as KILLED.

A run is orphaned when it is RUNNING, was opened on this host (tag `host`) by a process (tag `pid`) that no longer
exists. Runs opened on other hosts are left alone: their process cannot be checked from here.
"""
from __future__ import annotations

from retrieval_lab.sweep.state import host, pid_alive


def find_finished(client, experiment_id: str, config_hash: str):
    """The newest FINISHED run of this configuration hash, or None."""
    runs = client.search_runs([experiment_id],
                              filter_string=f"tags.config_hash = '{config_hash}' and attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0] if runs else None


def mark_orphans(client, experiment_id: str, config_hash: str | None = None) -> list[str]:
    """Set orphaned RUNNING runs (all of the experiment's, or one configuration's) to KILLED; return their ids."""
    query = "attributes.status = 'RUNNING'"
    if config_hash:
        query += f" and tags.config_hash = '{config_hash}'"
    killed = []
    here = host()
    for run in client.search_runs([experiment_id], filter_string=query, max_results=5000):
        tags = run.data.tags
        if tags.get("host") != here or not tags.get("pid", "").isdigit():
            continue
        if pid_alive(int(tags["pid"])):
            continue
        client.set_tag(run.info.run_id, "killed_reason", f"process {tags['pid']} on {here} ended without closing it")
        client.set_terminated(run.info.run_id, "KILLED")
        killed.append(run.info.run_id)
    return killed
