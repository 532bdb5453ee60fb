# The sandbox timebank, to try the compose stack against a partner (`--profile sandbox`): a
# development tool with no real security, so an image of its own. The gateway's image
# (deploy/Dockerfile) never carries it; this one holds the gateway only because the sandbox
# imports a few of its helpers.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 sandbox
COPY requirements/runtime.lock /tmp/runtime.lock
RUN pip install --no-cache-dir --require-hashes -r /tmp/runtime.lock && rm /tmp/runtime.lock
COPY pyproject.toml README.md LICENSE /src/
COPY gateway /src/gateway
COPY connectors /src/connectors
COPY schemas /src/schemas
COPY devtools /src/devtools
RUN pip install --no-cache-dir --no-deps /src /src/devtools && rm -rf /src
USER sandbox
WORKDIR /home/sandbox
ENV GATEWAY_DATA_DIR=/home/sandbox/var
EXPOSE 5001
CMD ["gateway", "sandbox", "--host", "0.0.0.0", "--port", "5001"]
