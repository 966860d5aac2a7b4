"""The soak: the operator managing many pools for hundreds of cycles at an accelerated
clock while a seeded fault schedule breaks Prometheus, the Kubernetes API, PostgreSQL,
the leader and the pools' specs; afterwards the state store and the API's request log are
checked for doubled, lost and unsafe actions and for split brain.

`tests/soak` runs a short form on every `pytest`; `python -m bench.soak` the long form.
Both use `run.run_soak`.
"""
