"""Where models and problems come from: registries of model sources (`models`: hub ids, local
folders, the embedded default, tiny / toy / random-weight models, the load-time self-check) and of
datasets (`data`: GSM8K, MATH, the toy sums; disjoint splits). Imports only the core."""
