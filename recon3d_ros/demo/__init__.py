"""Helpers behind ``recon3d demo`` and the robustness benchmarks.

* :mod:`.session`: one ``recon3d demo`` run: node process, publishing, collecting, files.
* :mod:`.sources`: frame sources (image, video, folder); :mod:`.trajectory`: the synthetic
  camera sequence.
* :mod:`.outputs`: the files written from what the node sent back.
* :mod:`.visualize`: depth colormaps with a metre legend and a point-cloud preview renderer.
* :mod:`.harness`: run the depth node as its own process and talk to it over real DDS.
* :mod:`.tiny_models`: small TorchScript depth models for tests and benchmarks.
"""
