"""``make bench``: load the real service and a bare Litestar baseline with wrk, side by side.

Both servers run as separate processes under the production uvicorn command, load comes from
a wrk process on loopback, and every figure is reported as a ratio against the baseline
measured in the same run, so the numbers mean something on whatever machine runs them.
"""
