//! Row cells per resource, in column order, including the wide (priority 1) cells: the
//! server always prints wide and kubectl drops the wide columns itself.

pub(crate) mod endpoints;
pub(crate) mod event;
pub(crate) mod node;
pub(crate) mod pod;
pub(crate) mod service;
pub(crate) mod simple;
