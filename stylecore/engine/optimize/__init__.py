"""The Gatys optimisation: VGG features, the losses, L-BFGS and the coarse-to-fine driver."""
