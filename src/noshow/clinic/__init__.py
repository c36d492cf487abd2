"""From a score to a decision: calibration, flagging policies, reasons, scoring, call list, model card.

Import the modules themselves (``from noshow.clinic.calibration import fit_calibrator``): this
package file imports nothing, so that low layers (the model file, training) can use calibration
without loading the scoring path that sits above them.
"""
