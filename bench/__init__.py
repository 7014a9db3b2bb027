"""`python -m bench`: the gateway against the bare simulator, and the gateway overloaded.

load.py             compare: N streaming requests at concurrency C, timed the same way
                    for both targets (TTFT = first content, total = end of stream)
lean_http.py        the default load client's HTTP/1.1 (asyncio protocol, httptools' parser)
report.py           compare: percentiles, the table, the ratio rows and the targets, JSON output
overload.py         overload: open-loop Poisson arrivals at 3x local capacity over Basic,
                    Pro and Enterprise accounts; the outcome of every request; the books
overload_report.py  overload: per-tier and per-pool figures, the checks, the tables
system.py           throwaway PostgreSQL and Redis, the stack as processes, the books check
dashboard.py        dashboard: one heavy account's usage report from the rollups against
                    the same aggregation from the raw usage rows; its table
dashboard_seed.py   dashboard: millions of usage and ledger rows and their rollups, by SQL
"""
