"""`slarules`: a thin shell over the library. Every failure is one paragraph, exit 2.

Output is built completely before anything is written, so a failure never leaves
half a verdict on stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

EXIT_INPUT = 2
EXIT_BUG = 70


class _Backends:
    """`--backend`'s choices: the registered backends (runtime/backend.py), read when an argument is checked
    or help is shown, so a backend registered at run time is a choice, and building the parser (every cold
    start, `--version` too) imports no backend registry."""

    def __init__(self, *extra: str):
        self.extra = extra

    def names(self) -> tuple[str, ...]:
        from .runtime.backend import names
        return (*names(), *self.extra)

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __iter__(self):
        return iter(self.names())

    def __eq__(self, other: object) -> bool:     # two parsers built alike have equal choices
        return isinstance(other, _Backends) and other.extra == self.extra

    __hash__ = None     # type: ignore[assignment]  # mutable-looking: equal by content, never a key


def _parser(only: str | None = None) -> argparse.ArgumentParser:
    """The CLI's parser; `only`: just that command's (what a run of one command needs: building
    every command's arguments was a few ms of each cold start)."""
    p = argparse.ArgumentParser(prog="slarules", description="Adjudicate SLA breaches and liability for "
                                "disputed parcels from YAML rule packs.")
    p.add_argument("--version", action=_Version)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    if only in (None, "adjudicate"):
        a = sub.add_parser("adjudicate", help="adjudicate one case (YAML or JSON; - for stdin)")
        _case_arguments(a)
        _decision_log_argument(a)
    if only in (None, "explain"):
        x = sub.add_parser("explain", help="trace every rule for one case: why, why not, and what would flip it")
        _case_arguments(x)
    if only in (None, "check"):
        c = sub.add_parser("check", help="validate packs and analyse them together: every problem at once, "
                           "with file:line:col, severity and a hint; conflicts and dead rules with witness cases")
        c.add_argument("paths", nargs="*", metavar="PACK", help="pack, catalogue and pack-test files, or directories "
                       "(read with their subdirectories; default: the shipped packs)")
        c.add_argument("--catalogue", metavar="FILE", help="clause catalogue (default: clauses.yaml beside the packs, "
                       "else the shipped one)")
        c.add_argument("--strict", action="store_true", help="warnings fail too")
        c.add_argument("--format", choices=("text", "json", "sarif", "github"), default="text",
                       help="text (default); json; sarif: SARIF 2.1.0 for code-scanning views; github: "
                       "GitHub Actions annotations")
        c.add_argument("--no-analysis", dest="analyse", action="store_false",
                       help="skip the conflict and dead-rule analysis (schema and meaning only)")
        c.add_argument("--examples", type=int, default=400, metavar="N",
                       help="cases Hypothesis generates to explore the packs, and per targeted search (default 400)")
        c.add_argument("--seed", type=int, default=0, help="seed of the witness search (default 0: reproducible)")
    if only in (None, "test"):
        t = sub.add_parser("test", help="run pack tests (*.test.yaml) and report rule and branch coverage")
        t.add_argument("paths", nargs="*", metavar="PATH", help="test files or directories (default: the shipped packs)")
        t.add_argument("--packs", nargs="+", metavar="PATH", help="packs to test (default: the packs beside the tests)")
        t.add_argument("--fail-under", dest="fail_under", type=float, default=0.0, metavar="PERCENT",
                       help="fail when total coverage (rules and branches) is below this")
        t.add_argument("--format", choices=("text", "json"), default="text", help="text (default) or json")
        t.add_argument("-v", "--verbose", action="store_true", help="list passing cases too")
        t.add_argument("--backend", action="append", choices=_Backends(), metavar="NAME",
                       help="run every case on this backend (repeatable; default: every registered backend, "
                       "%(choices)s)")
    if only in (None, "batch"):
        b = sub.add_parser("batch", help="adjudicate every case of a JSON Lines or Parquet file: verdicts, "
                           "an errors file, an optional settlement statement; resumable after a kill")
        b.add_argument("input", help="cases, one per line (*.jsonl) or one per row (*.parquet)")
        b.add_argument("-o", "--output", required=True, help="verdicts: *.jsonl or *.parquet")
        b.add_argument("--errors", metavar="FILE", help="rejected rows (default: OUTPUT's name + .errors.jsonl)")
        b.add_argument("--statement", metavar="DIR", help="write the settlement: stations.csv, service.csv, kpi.csv, "
                       "arrival_hours.csv and report.html")
        b.add_argument("--backend", choices=_Backends(), default=None,
                       help="what evaluates the rules: polars, vectorised over each chunk (default), durable, "
                       "durable_rules per case, or another registered backend")
        b.add_argument("--spark", action="store_true", help="run on Apache Spark, the polars backend per partition "
                       "(pip install 'slarules[spark]')")
        b.add_argument("--master", default="local[*]", help="Spark master URL with --spark (default local[*])")
        # Before --backend and --spark, one word named both what evaluates the rules and where the batch runs.
        b.add_argument("--engine", choices=_Backends("spark"), help=argparse.SUPPRESS)
        b.add_argument("--lang", choices=("zh", "en"), default="zh", help="language of messages (default zh)")
        b.add_argument("--as-of", dest="as_of", help="adjudicate every case as of this instant (default: each "
                       "case's as_of, else when the run "
                       "first started; a resumed run keeps it)")
        b.add_argument("--packs", nargs="+", metavar="PATH", help="pack files or directories")
        b.add_argument("--workers", type=int, default=0, help="processes, at most (default: one per core for inputs "
                       "over 4 MiB); never more than the CPUs this process may use nor the chunks of the input")
        b.add_argument("--chunk-size", dest="chunk_size", type=int, default=20000,
                       help="lines (JSON Lines) or rows (Parquet) per chunk (default 20000)")
        b.add_argument("--input-format", dest="input_format", choices=("jsonl", "parquet"),
                       help="read INPUT as this (default: from its name)")
        b.add_argument("--output-format", dest="output_format", choices=("jsonl", "parquet"),
                       help="write OUTPUT as this (default: from its name)")
        b.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="progress bar on stderr (default: only on a terminal)")
        b.add_argument("--fresh", action="store_true", help="discard an interrupted run's checkpoint and start over")
        _decision_log_argument(b)
        _limit_argument(b)
    if only in (None, "diff"):
        _diff_parser(sub)
    if only in (None, "replay"):
        r = sub.add_parser("replay", help="re-adjudicate every decision of a decision log and report those whose "
                           "verdict differs now; exit 1 if any does")
        r.add_argument("log", metavar="LOG", help="a decision log (--decision-log of adjudicate or batch)")
        r.add_argument("--packs", nargs="+", metavar="PATH", help="pack files or directories (default: the shipped packs)")
        r.add_argument("--format", choices=("text", "json"), default="text", help="text (default) or json")
        r.add_argument("--batch", action="store_true", help="replay through the batch (columnar, --workers processes): "
                       "the same verdicts, faster for large logs")
        r.add_argument("--workers", type=int, default=0, help="processes with --batch (default: one per core for large logs)")
        r.add_argument("--spark", action="store_true", help="replay through the batch on Apache Spark")
        r.add_argument("--master", default="local[*]", help="Spark master URL with --spark (default local[*])")
        r.add_argument("--upgrade", metavar="NEW", help="replay nothing: seal the records of LOG, written before "
                       "slarules sealed them, into the log NEW (each checked first; docs/decision_log.md)")
        _limit_argument(r)
    if only in (None, "serve"):
        from .serve.config import add_arguments
        add_arguments(sub.add_parser("serve", help="serve the packs over HTTP: adjudicate, explain and batch for "
                                     "any language, with a decision log and live reloads (pip install "
                                     "'slarules[server]')"))
    if only in (None, "completion"):
        k = sub.add_parser("completion", help="print a shell completion script: eval \"$(slarules completion bash)\"")
        k.add_argument("shell", choices=("bash", "zsh", "tcsh"), help="the shell to complete in")
    if only in (None, "schema"):
        s = sub.add_parser("schema", help="print a JSON Schema: the case, a rule pack, or the verdict")
        s.add_argument("what", choices=("case", "pack", "verdict"), help="which schema")
    return p


class _Version(argparse.Action):
    """`--version`: the installed package's version, read from its metadata only when asked (argparse's own
    "version" action wants the text while the parser is built, on every cold start)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **_: object) -> None:
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0,
                         help="print slarules' version and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        from importlib.metadata import version
        sys.stdout.write(f"slarules {version('slarules')}\n")      # where argparse's own version goes
        parser.exit()


def _diff_parser(sub) -> None:
    d = sub.add_parser("diff", help="run two pack sets over the same cases and report what changes: findings, "
                       "liability, money per station, complaint levels, with example waybills")
    d.add_argument("input", metavar="CASES", help="cases: JSON Lines (*.jsonl) or Parquet (*.parquet)")
    d.add_argument("--base", nargs="+", required=True, metavar="PACK", help="the packs in force: files or directories")
    d.add_argument("--head", nargs="+", required=True, metavar="PACK", help="the packs proposed")
    d.add_argument("-o", "--output", metavar="DIR", help="also write diff.json, diff.txt and diff.html here")
    d.add_argument("--format", choices=("text", "json"), default="text", help="text (default) or json")
    d.add_argument("--fail-on-change", dest="fail_on_change", action="store_true",
                   help="exit 1 when any verdict changed (for CI)")
    d.add_argument("--examples", type=int, default=5, metavar="N", help="example waybills per kind of change")
    d.add_argument("--as-of", dest="as_of", help="judge every case as of this instant, on both sides")
    d.add_argument("--lang", choices=("zh", "en"), default="zh", help="language of messages (default zh)")
    d.add_argument("--backend", choices=_Backends(), default=None,
                   help="what evaluates the rules on both sides (default polars)")
    d.add_argument("--spark", action="store_true", help="run both sides on Apache Spark")
    d.add_argument("--master", default="local[*]", help="Spark master URL with --spark (default local[*])")
    d.add_argument("--workers", type=int, default=0, help="processes (default: one per core for large inputs)")
    d.add_argument("--chunk-size", dest="chunk_size", type=int, default=20000,
                   help="lines (JSON Lines) or rows (Parquet) per chunk (default 20000)")
    d.add_argument("--input-format", dest="input_format", choices=("jsonl", "parquet"),
                   help="read CASES as this (default: from its name)")
    _limit_argument(d)


def _decision_log_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--decision-log", dest="decision_log", metavar="FILE",
                   help="append one sealed JSON line per decision (once): decision id, the case as given, as_of, "
                   "packs, verdict digest, logged_at (read back by `slarules replay`; docs/decision_log.md)")


def _case_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("case", help="case file, or - to read standard input")
    p.add_argument("--format", choices=("text", "json"), default="text", help="text (default) or json")
    p.add_argument("--lang", choices=("zh", "en"), default="zh", help="language of messages (default zh)")
    p.add_argument("--as-of", dest="as_of", help="adjudicate as of this ISO 8601 instant "
                   "(default: the case's as_of, else now)")
    p.add_argument("--packs", nargs="+", metavar="PATH", help="pack files or directories "
                   "(default: the shipped packs)")
    _limit_argument(p)


def _limit_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--limit", action="append", metavar="NAME=N",
                   help="raise or lower a per-case limit: case_bytes (default 1MiB; KiB/MiB allowed) or scans "
                   "(default 1000); repeat for both")


def _limits(args):
    from .case.limits import Limits
    return Limits.parse(getattr(args, "limit", None))


def _engine(args):
    from .engine import Engine
    engine = Engine.load(args.packs) if args.packs else Engine.default()
    return engine.with_limits(_limits(args))


def _read_case(args):
    """The case file or standard input, validated (Pydantic is imported only to explain a bad case)."""
    from .case.fast import read_case
    return read_case(args.case, _limits(args), stdin=sys.stdin.buffer)


def _adjudicate(args) -> str:
    from .case.fast import read_case
    from .verdict.text import render_text
    if not args.decision_log:
        verdict = _engine(args).adjudicate(_read_case(args), as_of=args.as_of, lang=args.lang)
    else:
        from .output.decision_log import DecisionLog
        with DecisionLog(args.decision_log) as log:     # locked and checked before any work
            case, given = read_case(args.case, _limits(args), stdin=sys.stdin.buffer, with_data=True)
            verdict = _engine(args).adjudicate(case, as_of=args.as_of, lang=args.lang, log=_ReadAs(log, given))
    return verdict.to_json() + "\n" if args.format == "json" else render_text(verdict, args.lang)


class _ReadAs:
    """A decision log that records the document as read from the file, not the validated case made of it."""

    def __init__(self, log, given):
        self.log, self.given = log, given

    def record(self, case, verdict, lang):
        return self.log.record(self.given, verdict, lang)


def _explain(args) -> str:
    from .verdict.explain import render_explanation
    case = _read_case(args)
    explanation = _engine(args).explain(case, as_of=args.as_of, lang=args.lang)
    return explanation.to_json() + "\n" if args.format == "json" else render_explanation(explanation, args.lang)


def _schema(args) -> str:
    if args.what == "case":
        from .facts import case_schema
        schema = case_schema()
    elif args.what == "pack":
        from .packs.model import pack_schema
        schema = pack_schema()
    else:
        from .verdict.assembly import Verdict
        schema = Verdict.json_schema()
    return json.dumps(schema, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def _completion(args) -> str:
    """The whole parser as a static completion script (shtab): nothing runs when the shell completes."""
    import shtab
    return shtab.complete(_parser(), shell=args.shell) + "\n"


def _check(args) -> tuple[str, int]:
    from .tools.check import CheckOptions, check, default_paths, render, to_json
    if args.examples < 1:
        from .errors import InputError
        raise InputError("--examples must be at least 1", field="--examples")
    issues = check(args.paths or default_paths(), args.catalogue,
                   CheckOptions(analyse=args.analyse, examples=args.examples, seed=args.seed))
    failing = {"error", "warning"} if args.strict else {"error"}
    code = 1 if any(i.severity in failing for i in issues) else 0
    if args.format in ("sarif", "github"):
        from .tools.check_formats import render_github, render_sarif
        return (render_sarif if args.format == "sarif" else render_github)(issues), code
    if args.format == "json":
        return json.dumps(to_json(issues), ensure_ascii=False, indent=2) + "\n", code
    return render(issues), code


def _test(args) -> tuple[str, int]:
    from .engine import Engine, default_pack_dirs
    from .tools.packtest import run_tests, run_tests_beside_packs
    paths = args.paths or [str(d) for d in default_pack_dirs()]
    report = run_tests(Engine.load(args.packs), paths, args.backend) if args.packs else \
        run_tests_beside_packs(paths, Engine.load, args.backend)
    if args.format == "json":
        text = json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n"
    else:
        text = report.render(args.verbose)
    short = report.coverage.percent() + 1e-9 < args.fail_under
    if short and args.format == "text":
        text += f"coverage {report.coverage.percent():.1f}% is under --fail-under {args.fail_under:g}%\n"
    return text, 1 if report.failed or short else 0


def _batch(args) -> tuple[str, int]:
    from .batch.runner import BatchOptions, run_batch
    from .errors import InputError
    if args.chunk_size < 1 or args.workers < 0:
        raise InputError("--chunk-size must be at least 1 and --workers at least 0", field="--chunk-size")
    from .runtime import backend as backends
    spark = args.spark or args.engine == "spark"     # the old --engine named a backend or "spark"
    backend = args.backend or (args.engine if args.engine not in (None, "spark") else backends.DEFAULT)
    options = BatchOptions(backend=backend, lang=args.lang, as_of=args.as_of, chunk_size=args.chunk_size,
                           workers=args.workers, input_format=args.input_format,
                           output_format=args.output_format, errors=args.errors, statement=args.statement,
                           progress=args.progress, fresh=args.fresh, decision_log=args.decision_log,
                           totals=bool(args.statement))
    if spark:
        from .spark import run_spark_batch
        summary = run_spark_batch(_engine(args), args.input, args.output, options, master=args.master)
    else:
        summary = run_batch(_engine(args), args.input, args.output, options)
    sys.stderr.write(summary.render())
    return "", EXIT_BUG if summary.internal else 0      # every output is written; the exit code says a row hit a bug


def _diff(args) -> tuple[str, int]:
    from .errors import InputError
    from .tools.diff import DiffOptions, diff_packs
    if args.chunk_size < 1 or args.workers < 0:
        raise InputError("--chunk-size must be at least 1 and --workers at least 0", field="--chunk-size")
    from .runtime import backend as backends
    options = DiffOptions(backend=args.backend or backends.DEFAULT, lang=args.lang, as_of=args.as_of, chunk_size=args.chunk_size,
                          workers=args.workers, input_format=args.input_format, examples=args.examples,
                          spark=args.spark, master=args.master)
    diff = diff_packs(args.input, args.base, args.head, options, output=args.output, limits=_limits(args))
    code = 1 if args.fail_on_change and diff.changed else 0
    return (diff.to_json() if args.format == "json" else diff.text()), code


def _replay(args) -> tuple[str, int]:
    from .tools.decisions import replay, upgrade
    if args.upgrade:
        sealed = upgrade(args.log, args.upgrade, case_bytes=_limits(args).case_bytes)
        return f"{sealed:,} records sealed into {args.upgrade}\n", 0
    report = replay(args.log, _engine(args), batch=args.batch, spark=args.spark, master=args.master,
                    workers=args.workers)
    return (report.to_json() if args.format == "json" else report.text()), 1 if report.differ else 0


def _serve(args) -> tuple[str, int]:
    from .serve.config import options_from
    from .serve.supervisor import serve
    return "", serve(options_from(args))


COMMANDS = {"adjudicate": _adjudicate, "explain": _explain, "check": _check, "test": _test, "schema": _schema,
            "batch": _batch, "diff": _diff, "replay": _replay, "serve": _serve, "completion": _completion}


def main(argv: Sequence[str] | None = None) -> int:
    # The CLI loads no Pydantic plugins; looking for them reads every installed package's metadata.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser(argv[0] if argv and argv[0] in COMMANDS else None).parse_args(argv)
    from .errors import EngineError, Interrupted, SlaRulesError
    try:
        output = COMMANDS[args.command](args)
        output, code = output if isinstance(output, tuple) else (output, 0)
    except SlaRulesError as exc:
        for each in getattr(exc, "problems", None) or [exc]:     # a log's problems: one paragraph each
            print(f"slarules: error: {each}", file=sys.stderr)
        return EXIT_BUG if isinstance(exc, EngineError) else EXIT_INPUT
    except Interrupted as exc:      # SIGINT or SIGTERM during a run: it stopped cleanly and says what it kept
        print(f"slarules: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("slarules: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say so in one line; SLARULES_DEBUG=1 shows the traceback
        if os.environ.get("SLARULES_DEBUG"):
            raise
        from .echo import MESSAGE_LIMIT, quote
        print(f"slarules: internal error ({type(exc).__name__}: {quote(exc, MESSAGE_LIMIT)}); this is a bug, "
              "rerun with SLARULES_DEBUG=1 and report it", file=sys.stderr)
        return EXIT_BUG
    try:
        sys.stdout.write(output)
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    return code


if __name__ == "__main__":
    sys.exit(main())
