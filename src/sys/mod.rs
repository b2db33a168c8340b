//! Operating-system glue that more than one layer uses (a backend's own system calls are
//! in `backend/sys`): the socket files of Unix listening sockets.

pub(crate) mod unix_socket;
