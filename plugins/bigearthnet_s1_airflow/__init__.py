"""Airflow glue for bigearthnet-s1: a catalogue hook, a retrieval trigger, a download operator.

Thin wrappers only: the work is done by the ``bigearthnet_s1`` library, imported inside
``execute``/``run`` so that parsing a DAG never loads numpy, rasterio or geopandas.
"""
