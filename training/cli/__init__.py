"""``pvcast``: one command for every offline job (each Kubernetes Job/CronJob runs one of these)."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence

from pydantic import ValidationError

from pvcast.errors import PvcastError
from training.cli import commands
from training.cli.settings import CliSettings

logger = logging.getLogger("pvcast")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pvcast", description=__doc__)
    parser.add_argument("--repo", help="feature store folder (env PVCAST_FEATURE_REPO, default ./feature_repo)")
    parser.add_argument("--online-store", choices=["sqlite", "redis"], help="online store (env PVCAST_ONLINE_STORE)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.register(sub)
    return parser


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("feast", "bentoml", "urllib3", "matplotlib", "numexpr", "onnx_ir", "onnxscript"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("torch").setLevel(logging.ERROR)  # exporter notes about optional torchvision ops
    if not verbose:  # a dependency's own deprecation (Feast's DuckDB store calls ibis' old API) is not the user's
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ibis\.")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        settings = CliSettings.from_args(args)
        return int(args.handler(args, settings) or 0)
    except PvcastError as exc:
        logger.error("%s", exc)
        return 2
    except ValidationError as exc:  # a settings or option value a pydantic model refused
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "input"
        logger.error("invalid %s=%r: %s", where, first.get("input"), first["msg"])
        return 2
    except ValueError as exc:  # bad option values that reached a validator
        logger.error("invalid input: %s", exc)
        return 2
    except KeyboardInterrupt:
        logger.error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
