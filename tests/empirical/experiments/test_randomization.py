

def test_randomised_maps_silence_only_the_conservation_warning():
    """Oracle: warnings.catch_warnings records what escapes: the conservation warning of a randomised
    network's maps is silenced, any other RuntimeWarning is not, and the original model's stays on."""
    import warnings

    from empirical.attribution import ConservationWarning
    from empirical.experiments._common import conservation_unchecked

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with conservation_unchecked():
            warnings.warn("lost relevance", ConservationWarning, stacklevel=2)
            warnings.warn("something else", RuntimeWarning, stacklevel=2)
        warnings.warn("original model", ConservationWarning, stacklevel=2)
    assert [str(w.message) for w in caught] == ["something else", "original model"]
    assert issubclass(ConservationWarning, RuntimeWarning)
