#!/usr/bin/env python3
"""Writes a realistic stack file with N services to stdout (bench input).

Each service has an image, environment (list and map forms), labels, ports, a healthcheck,
deploy settings (replicas, resources, update/restart policy, placement), a named volume, a
secret and a config, networks, and an x-berth route — the shapes real stacks use.
"""
import sys

n = int(sys.argv[1])
out = ['version: "3.9"', "services:"]
for i in range(n):
    out += [
        f"  svc{i}:",
        f"    image: registry.example.com/app/svc{i}:${{TAG:-1.0.{i}}}",
        "    command: [\"serve\", \"--port\", \"8000\"]",
        "    environment:",
        f"      - SERVICE_INDEX={i}",
        "      - DATABASE_URL=postgres://db:5432/app",
        "      - LOG_LEVEL=${LOG_LEVEL:-info}",
        "    labels:",
        f"      com.example.team: team{i % 7}",
        "    ports:",
        f"      - target: 8000",
        f"        published: {10000 + i}",
        "        mode: host",
        "    healthcheck:",
        "      test: [\"CMD\", \"wget\", \"-q\", \"-O-\", \"http://127.0.0.1:8000/health\"]",
        "      interval: 10s",
        "      timeout: 2s",
        "      retries: 3",
        "      start_period: 5s",
        "    volumes:",
        f"      - data{i % 10}:/var/lib/app",
        "      - type: tmpfs",
        "        target: /tmp",
        "    secrets: [app_key]",
        "    configs:",
        "      - source: app_conf",
        "        target: /etc/app.conf",
        "    networks: [front, back]",
        "    deploy:",
        f"      replicas: {1 + i % 3}",
        "      resources:",
        "        limits: { cpus: '0.5', memory: 256M }",
        "        reservations: { memory: 64M }",
        "      update_config: { parallelism: 1, delay: 5s, order: start-first, failure_action: rollback }",
        "      restart_policy: { condition: on-failure, delay: 5s, max_attempts: 3 }",
        "      placement:",
        "        constraints: [node.role == worker]",
        "    x-berth:",
        f"      routes: [/svc{i}]",
        "      port: 8000",
    ]
out += ["volumes:"] + [f"  data{j}: {{}}" for j in range(10)]
out += ["networks:", "  front: {}", "  back: { driver: overlay, attachable: true }"]
out += ["secrets:", "  app_key:", "    file: ./app_key.txt"]
out += ["configs:", "  app_conf:", "    file: ./app.conf"]
print("\n".join(out))
