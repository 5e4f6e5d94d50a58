"""Running a Program: a case's derived values, three-valued logic, and the backends.

`values` derives what rules test from a case; `evaluate` is the three-valued
reference logic; `backend` is the interface; `durable_backend` (durable_rules,
one case) and `polars_backend` (Polars, a chunk of cases) implement it.
"""
