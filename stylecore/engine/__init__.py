"""The engine (torch): `Stylizer` and everything it paints with, the optimisation and the instant network."""
