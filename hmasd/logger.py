"""Structured logs (structlog) and TensorBoard through one metric sink.

- Console: structlog's readable renderer on stderr (colours on a TTY), plus a tqdm bar with an ETA on a TTY.
- `logs/<run>.jsonl`: every event as one JSON line, including every metric dict.
- `tf-logs/<run>/`: TensorBoard scalars, env steps on the x axis.
- Tracebacks (`log_traceback`): always in the JSON file, on the console only at DEBUG, so that a user
  error stays one line on the console while its cause is kept.
`MetricSink.write(stats, step)` sends the same keys to the JSON log and to TensorBoard.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import structlog
from tqdm import tqdm

_SHARED = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


class _BarAwareStream:
    """Console stream that writes through tqdm, which clears any progress bar before a log line and
    redraws it after."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        tqdm.write(text, file=self.stream, end="")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def configure_logging(level: str = "INFO", jsonl_path: str | Path | None = None) -> None:
    """Route the `hmasd` loggers to the console and, if given, to a JSON-lines file (appended)."""
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    tty = sys.stderr.isatty()
    console = logging.StreamHandler(_BarAwareStream(sys.stderr))
    console.setLevel(level.upper())
    console.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.dev.ConsoleRenderer(colors=tty)],
        foreign_pre_chain=_SHARED))
    root = logging.getLogger("hmasd")
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.setLevel(level.upper())
    root.propagate = False
    root.addHandler(console)
    # Tracebacks pass the "hmasd" level at any level; the console handler's own level filters them.
    logging.getLogger(_TRACE).setLevel(logging.DEBUG)
    metrics = logging.getLogger("hmasd.metrics")  # metrics go to the file only, not the console
    for old in list(metrics.handlers):
        metrics.removeHandler(old)
        old.close()
    metrics.propagate = False
    metrics.setLevel(logging.INFO)
    if jsonl_path is not None:
        Path(jsonl_path).parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(jsonl_path, mode="a", encoding="utf-8")
        handler.setFormatter(structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        structlog.processors.JSONRenderer()],
            foreign_pre_chain=_SHARED))
        root.addHandler(handler)
        metrics.addHandler(handler)


def get_logger(name: str = "hmasd"):
    return structlog.get_logger(name)


_TRACE = "hmasd.trace"


def log_traceback(event: str, text: str | None, **fields) -> None:
    """Keep a traceback (e.g. an env worker's) in the JSON log; the console shows it at DEBUG only."""
    if text:
        get_logger(_TRACE).debug(event, exception=text.rstrip(), **fields)


def progress_bar(total: int, done: int = 0) -> tqdm:
    """Env steps done of `total`, with rate and ETA, on a TTY; disabled otherwise (the logs carry the
    progress). Update it with the env steps of each update."""
    return tqdm(total=total, initial=min(done, total), unit="step", unit_scale=True, dynamic_ncols=True,
                file=sys.stderr, disable=not sys.stderr.isatty(), leave=True)


class MetricSink:
    """One place metrics go: TensorBoard scalars and the JSON log, with the same keys."""

    def __init__(self, tb_dir: str | Path, purge_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # purge_step drops any events at or after the resume step left by the run that was interrupted,
        # so resumed curves carry on without duplicated points.
        self.writer = SummaryWriter(log_dir=str(tb_dir), purge_step=purge_step)
        self.log = get_logger("hmasd.metrics")

    def write(self, stats: dict[str, float], step: int) -> None:
        clean = {k: float(v) for k, v in stats.items() if v is not None}
        for tag, value in clean.items():
            self.writer.add_scalar(tag, value, global_step=step)
        self.log.info("metrics", env_steps=step, **clean)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
