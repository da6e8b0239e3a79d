//! The uWSGI stats server document and its mapping to metric families.
