"""Adjudicate a day's cases on a Spark cluster; the README's spark-submit recipe runs this file.

    spark-submit ... adjudicate_day.py INPUT OUTPUT_DIR [--as-of ISO] [--lang zh|en]
                     [--packs DIR ...] [--statement LOCAL_DIR]

INPUT is a JSON Lines or Parquet file, or a directory of them, on any
filesystem Spark reads (hdfs://, s3a://, file:). OUTPUT_DIR receives
`verdicts/` (Parquet: the verdict's columns plus `json`, the docs/contract.md
verdict) and `errors/` (JSON Lines: file, row, waybill, error, message, field,
hint). The settlement statement is small and is written on the driver.
"""
from __future__ import annotations

import argparse
import sys

from pyspark.sql import SparkSession

from slarules import Engine, SlaRulesError
from slarules.spark import adjudicate_files


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--as-of", dest="as_of", help="instant for cases without as_of (default: each case's own)")
    ap.add_argument("--lang", default="zh", choices=("zh", "en"))
    ap.add_argument("--packs", nargs="+", help="pack files or directories on the driver (default: shipped packs)")
    ap.add_argument("--statement", help="local directory on the driver for the settlement CSVs and report")
    args = ap.parse_args()
    spark = SparkSession.builder.appName("slarules: adjudicate a day").getOrCreate()
    try:
        engine = Engine.load(args.packs) if args.packs else Engine.default()   # compiled here, once
        result = adjudicate_files(spark, args.input, engine, as_of=args.as_of, lang=args.lang)
        result.verdicts.write.mode("overwrite").parquet(f"{args.output}/verdicts")
        result.errors.write.mode("overwrite").json(f"{args.output}/errors")
        statement = result.statement()
        if args.statement:
            statement.write(args.statement, title=f"slarules settlement: {args.input}")
        print(f"{statement.verdicts:,} verdicts, {statement.errors:,} errors")
        result.unpersist()
    except SlaRulesError as exc:
        print(f"slarules: error: {exc}", file=sys.stderr)
        return 2
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
