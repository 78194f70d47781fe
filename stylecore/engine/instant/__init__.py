"""The instant preset: a feed-forward network (Ghiasi et al. 2017) run by onnxruntime."""
