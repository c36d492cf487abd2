"""The statistics every layer may use: classification metrics, bootstrap intervals, calibration
slope and intercept (:mod:`~noshow.stats.metrics`) and the calibration maps
(:mod:`~noshow.stats.calibration`). NumPy (and scikit-learn inside the functions that need it);
nothing here imports the data, the model, training or evaluation."""
