"""BigEarthNet-S1: Sentinel-1 patches paired with BigEarthNet-S2, built from scratch.

The library knows nothing of Airflow; the DAG in ``dags/`` wraps it thinly.
"""

__version__ = "0.1.0"
