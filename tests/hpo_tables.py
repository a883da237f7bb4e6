"""A tiny made-up table of learning curves, shared by the tests of benchmarks/hpo_replay: 4 configurations x 3
epochs."""

CURVES = {  # (lr, batch): validation losses over 3 epochs
    (0.001, 8): [0.90, 0.80, 0.75],
    (0.001, 16): [0.95, 0.85, 0.70],
    (0.01, 8): [0.60, 0.55, 0.50],
    (0.01, 16): [1.00, 1.00, 1.00],
}
