"""Helpers behind ``recon3d demo`` and the robustness benchmarks.

* :mod:`.sources`: frame sources (synthetic camera sequence, image, video, folder).
* :mod:`.visualize`: depth colormaps with a metre legend and a point-cloud preview renderer.
* :mod:`.harness`: run the depth node as its own process and talk to it over real DDS.
* :mod:`.tiny_models`: small TorchScript depth models for tests and benchmarks.
"""
