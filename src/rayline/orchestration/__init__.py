"""Rayline's Airflow integration, laid out like an Airflow provider package.

- `hooks`: `ClusterManagerHook` (an Airflow Connection around the Cluster Manager
  client) and `RayJobHook` / `RayJobAsyncHook` (Ray's Job Submission API);
- `operators`: create and delete Ray clusters, submit a Ray job and follow it,
  deploy a model;
- `sensors`: wait for a cluster to be READY;
- `triggers`: the async pollers deferrable operators and sensors hand over to;
- `recording`: task callbacks that write each run and step to the metadata store;
- `dags`: the `rayline_train_and_serve` DAG.

Nothing here is imported by the rest of Rayline; importing a submodule imports Airflow.
"""
