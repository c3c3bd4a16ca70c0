"""The decoding methods the experiment compares, each a graded, resumable run over problems:
chain of thought (`cot`), Self-Consistency (`baselines`) and LatentSeek (`latentseek`); ALS is CoT
under `workbench.core.steering.steer`. Imports the core and the sources."""
