# One image for every tila service; the command picks the service.
FROM python:3.11-slim
WORKDIR /src
COPY . .
RUN pip install --no-cache-dir . && useradd --system --home /var/lib/tila tila && mkdir -p /var/lib/tila && chown tila /var/lib/tila
USER tila
WORKDIR /var/lib/tila
ENTRYPOINT ["tila"]
