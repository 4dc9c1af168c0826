# syntax=docker/dockerfile:1.7
#
# Airflow image for bigearthnet-s1 with ESA SNAP's command-line tools (gpt + microwave
# toolbox), so that docker-compose workers can run `--engine snap` as well as `--engine native`.
#
# NOT BUILT HERE: the development machine has no Docker engine and no internet. Kept small and
# explicit so that it can be checked by reading. Build where both exist:
#     docker build -t bigearthnet-s1:dev .
# and use it as the image of the official Airflow docker-compose file (AIRFLOW_IMAGE_NAME).
#
# The Airflow base image must match requirements.txt (apache-airflow==3.3.2, Python 3.11).
FROM apache/airflow:3.3.2-python3.11

# SNAP release and its unattended installer. Since SNAP 10 the Linux installers are named
# esa-snap_<bundle>_linux-<version>.sh; override the URL for another release or a mirror.
ARG SNAP_VERSION=13.0.0
ARG SNAP_SERIES=13.0
ARG SNAP_INSTALLER_URL=https://download.esa.int/step/snap/${SNAP_SERIES}/installers/esa-snap_all_linux-${SNAP_VERSION}.sh
# JVM heap for gpt (written to gpt.vmoptions; a run can still pass -J-Xmx, see gpt.GptOptions).
ARG SNAP_HEAP=6G

USER root

# fontconfig: the bundled JRE needs fonts even headless; libgfortran5: some SNAP natives.
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl ca-certificates fontconfig libgfortran5 \
 && rm -rf /var/lib/apt/lists/*

# install4j response file for an unattended install (`-q -varfile`): SNAP core and the
# microwave toolbox only. Component ids differ between releases (S1TBX up to SNAP 9,
# MICROWAVETBX from 10); unknown ids are ignored, so both are listed. To see the ids of
# another release, install it once interactively and read <snap>/.install4j/response.varfile.
COPY <<'EOF' /tmp/snap.varfile
sys.installationDir=/opt/snap
sys.languageId=en
sys.adminRights$Boolean=true
sys.programGroupDisabled$Boolean=true
sys.symlinkDir=/usr/local/bin
sys.component.SNAP$Boolean=true
sys.component.MICROWAVETBX$Boolean=true
sys.component.S1TBX$Boolean=true
sys.component.OPTTBX$Boolean=false
sys.component.S2TBX$Boolean=false
sys.component.S3TBX$Boolean=false
sys.component.SMOS$Boolean=false
sys.component.RSTB$Boolean=false
executeLauncherWithPythonAction$Boolean=false
forcePython$Boolean=false
EOF

RUN curl -fsSL -o /tmp/esa-snap.sh "${SNAP_INSTALLER_URL}" \
 && sh /tmp/esa-snap.sh -q -varfile /tmp/snap.varfile \
 && rm -f /tmp/esa-snap.sh /tmp/snap.varfile \
 && sed -i '/^-Xmx/d' /opt/snap/bin/gpt.vmoptions \
 && echo "-Xmx${SNAP_HEAP}" >> /opt/snap/bin/gpt.vmoptions \
 && /opt/snap/bin/gpt -h > /dev/null

# The library finds gpt and the graph templates through these (see gpt.py / graph.py).
ENV BIGEARTHNET_S1_GPT=/opt/snap/bin/gpt \
    BIGEARTHNET_S1_GRAPHS=/opt/airflow/include/graphs

USER airflow

# Pinned dependencies first (a layer that changes rarely), then the project itself.
COPY --chown=airflow:0 requirements.txt /opt/bigearthnet-s1/requirements.txt
RUN pip install --no-cache-dir -r /opt/bigearthnet-s1/requirements.txt

COPY --chown=airflow:0 pyproject.toml README.md /opt/bigearthnet-s1/
COPY --chown=airflow:0 src /opt/bigearthnet-s1/src
# src/bigearthnet_s1/graphs links to include/graphs: the package data the wheel carries
COPY --chown=airflow:0 include/graphs /opt/bigearthnet-s1/include/graphs
RUN pip install --no-cache-dir --no-deps /opt/bigearthnet-s1

# Graph templates (the single definition of the chain, shared by both engines).
COPY --chown=airflow:0 include/graphs /opt/airflow/include/graphs
