# sla-engine service image: `docker build -t sla-engine .` then
#   docker run -p 8000:8000 -v sla-data:/data sla-engine
# (SQLite in /data by default; see compose.yaml for PostgreSQL).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY sla_engine ./sla_engine
COPY calendars ./calendars
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[postgres,plot]"

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 sla && mkdir /data && chown sla /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels "sla_engine[postgres,plot]" \
    && rm -rf /wheels
USER sla
WORKDIR /data
ENV SLA_ENGINE_DATABASE_URL=sqlite:////data/sla-engine.db
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz').status == 200 else 1)"
ENTRYPOINT ["sla-engine"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
