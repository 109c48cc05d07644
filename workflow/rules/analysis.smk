# Labels, metrics, statistics, scaling, safety gate, figures and tables.


def analysis_targets():
    return []
