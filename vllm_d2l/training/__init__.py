"""Meta-training the hypernetwork: context distillation plus a reconstruction pretraining task."""
