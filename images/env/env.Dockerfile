# The task environment: a venv where the official images keep their conda env, with the
# recipe's packages. The host CA bundle is passed in so pip reaches PyPI through TLS proxies.
FROM {base}
COPY activate /opt/miniconda3/bin/activate
COPY requirements.txt ca.pem /tmp/monkeys-env/
RUN python3 -m venv /opt/miniconda3/envs/testbed \
    && PIP_CERT=/tmp/monkeys-env/ca.pem /opt/miniconda3/envs/testbed/bin/pip install -q --no-cache-dir \
       --disable-pip-version-check -r /tmp/monkeys-env/requirements.txt \
    && rm -rf /tmp/monkeys-env \
    && git config --global user.name monkeys && git config --global user.email monkeys@localhost \
    && git config --global --add safe.directory /testbed \
    && echo 'source /opt/miniconda3/bin/activate && conda activate testbed' >> /root/.bashrc
ENV VIRTUAL_ENV=/opt/miniconda3/envs/testbed PATH=/opt/miniconda3/envs/testbed/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
