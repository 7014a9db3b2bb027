"""`python -m bench`: the gateway against the bare simulator, in one run.

load.py     the client: N streaming requests at concurrency C, timed the same way
            for both targets (httpx async; TTFT = first content, total = end of stream)
system.py   throwaway PostgreSQL and Redis, the stack as processes, the books check
report.py   percentiles, the table, the ratio rows and the targets, JSON output
"""
