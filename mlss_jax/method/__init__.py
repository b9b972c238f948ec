"""The paper's method: levels, mixtures, mappers, critics, classifiers, centres, truncation."""
