"""`make bench`: one model, every way we serve it, measured in one run on this machine (scripts/bench.py).

Modules, in the order a run uses them: ``machine`` (cores, versions, commit), ``model`` (data, one trained and
registered model, the trips sent), ``servers`` (start a service on loopback, wait for it, stop it by its
process group), ``load`` (the HTTP load client), ``inprocess`` (timings without HTTP), ``levels`` (``make
levelN`` wall times in a throwaway copy of the tree), ``stats`` (percentiles), ``report`` (the table, the
goals, results.md) and ``chart`` (results.png).
"""
