"""What watching a host costs per turn: Prometheus metrics on, OpenTelemetry tracing off/on.

Sequential ``start_turn`` calls on one session, mock provider with no delay, in
three configurations interleaved round by round (observers are process-wide,
so each round installs and removes them) so machine noise hits all alike:

* ``none``: no observer; every hook is a no-op (the CLI's and the library's case);
* ``metrics``: the Prometheus observer ``rkat-rest`` always installs;
* ``metrics + tracing``: plus the OpenTelemetry observer, with the SDK's
  ``BatchSpanProcessor`` feeding an exporter that drops the spans (so what is
  timed is the span work in the turn, not a network).

Two turn shapes: ``ok`` (a one-word answer: 1 delta, the host's fixed cost) and
``50 words`` (50 text deltas: the per-event cost of the probes), on the memory
backend (no store I/O to hide the difference) and on sqlite (what servers run).

    .venv/bin/python bench/observability_overhead.py [--turns N] [--rounds R]
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from pathlib import Path

import _common  # noqa: F401  (puts the repo root on sys.path)
from _common import fmt_summary, header, now, summary_ms

import trio
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from actors import HostOptions, open_service
from meerkat import observability
from meerkat.observability.metrics import PrometheusObserver
from meerkat.observability.otel import TracingObserver

SHAPES = {"ok": {"reply": "ok"}, "50 words": {"reply_words": 50}}


class DropExporter(SpanExporter):
    """Takes batches of spans and forgets them."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans):  # type: ignore[no-untyped-def]
        self.spans += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


async def main(turns: int, rounds: int, warmup: int) -> None:
    header("observability_overhead: turn cost with metrics on, tracing off/on, against none")
    metrics = PrometheusObserver()
    exporter = DropExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracing = TracingObserver(provider.get_tracer("bench"))
    configs = {"none": (), "metrics": (metrics,), "metrics + tracing": (metrics, tracing)}
    with tempfile.TemporaryDirectory(prefix="rkat-bench-") as tmp:
        async with contextlib.AsyncExitStack() as stack:
            services = {}
            for backend in ("memory", "sqlite"):
                service = await stack.enter_async_context(open_service(
                    f"bench-{backend}", state_root=Path(tmp), backend=backend,
                    options=HostOptions(idle_timeout=3600.0)))
                services[backend] = service
            # One session per (backend, shape, config), so transcripts grow alike.
            sessions = {}
            for backend, service in services.items():
                for shape, params in SHAPES.items():
                    for config in configs:
                        sessions[backend, shape, config] = (await service.create_session(
                            provider="mock", provider_params=params, run_immediately=False)).session_id
            samples: dict[tuple[str, str, str], list[float]] = {key: [] for key in sessions}

            async def run(key: tuple[str, str, str], count: int, keep: bool) -> None:
                backend, _shape, config = key
                for observer in configs[config]:
                    observability.install(observer)
                try:
                    for i in range(count):
                        t0 = now()
                        await services[backend].start_turn(sessions[key], f"turn {i}")
                        if keep:
                            samples[key].append(now() - t0)
                finally:
                    for observer in configs[config]:
                        observability.uninstall(observer)

            for key in sessions:
                await run(key, warmup, keep=False)
            for _ in range(rounds):
                for key in sessions:
                    await run(key, turns, keep=True)
    provider.shutdown()
    print(f"{rounds} rounds x {turns} turns per case after {warmup} warm-up turns; spans exported: {exporter.spans}")
    for backend in services:
        for shape in SHAPES:
            print(f"\n{backend} backend, reply {shape}:")
            base = summary_ms(samples[backend, shape, "none"])
            for config in configs:
                s = summary_ms(samples[backend, shape, config])
                print(fmt_summary(f"  {config}", s))
            for config in ("metrics", "metrics + tracing"):
                s = summary_ms(samples[backend, shape, config])
                print(f"  RATIO {config} / none, {backend} {shape}, p50: {s['p50'] / base['p50']:.2f}x "
                      f"({(s['p50'] - base['p50']) * 1000:+.0f} us per turn)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=100, help="turns per case per round (default 100)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up turns per case (default 20)")
    args = parser.parse_args()
    trio.run(main, args.turns, args.rounds, args.warmup)
