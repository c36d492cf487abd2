"""From a score to a decision: flagging policies, reasons, scoring, call list, fairness, drift,
model card. The calibration maps these decisions rest on are in :mod:`noshow.stats.calibration`.

Import the modules themselves (``from noshow.clinic.reasons import reason_sizes``): this package
file imports nothing, so that importing one module does not load the others.
"""
