//! Writers over the collector's state: the Locust-style console table, percentiles, errors, CSV.
