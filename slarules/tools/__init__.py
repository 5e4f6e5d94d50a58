"""Tools for pack authors and claims officers: `check`, `witness`, `packtest` (`slarules test`),
`explain`, and the pytest plugin."""
