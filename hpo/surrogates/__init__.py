"""GPyTorch/BoTorch surrogate models: the standard GP (:mod:`hpo.surrogates.gp`), the freeze-thaw learning-curve
GP (:mod:`hpo.surrogates.freeze_thaw`) and CARBS' models (:mod:`hpo.surrogates.carbs`)."""
