"""Settlement totals over many verdicts: `statement` (per station, per service, the report) and `kpi`
(its customer-service indicators). Below the columnar backend, which feeds them a chunk's group-bys,
and below every batch, Spark and diff that adds verdicts to them.
"""
