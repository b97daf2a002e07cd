//! What a silent tree still moves, for the stall detector: bytes read and written by each
//! process (`rchar` and `wchar` of `/proc/<pid>/io`: files, pipes, and sockets used with
//! `read`/`write`), and when its TCP connections last carried data. The second is needed
//! because `recv`/`send` (what Rust's std, tokio and Python use on sockets) are not counted in
//! `/proc/<pid>/io`: a silent download at 1 KB/s moves nothing there. It is read from the
//! kernel's socket table (`NETLINK_SOCK_DIAG`, `tcp_info`) for the sockets the tree has open,
//! and only when everything else has been still for a whole window, so its cost (a readlink
//! per open descriptor of the tree) is paid about once per window of a tree that is idle.

use std::collections::HashSet;
use std::time::Duration;

use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, recv, send, socket,
};

/// Bytes `pid` has read and written so far, its threads and reaped children included;
/// `None` when steady may not read it (another user's process, a setuid one).
pub fn io_bytes(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let field = |name: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
    };
    Some(field("rchar:")? + field("wchar:")?)
}

/// The inodes of the sockets `pid` has open.
fn socket_inodes(pid: i32, into: &mut HashSet<u32>) {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return;
    };
    for entry in dir.flatten() {
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        if let Some(ino) = target
            .to_str()
            .and_then(|t| t.strip_prefix("socket:["))
            .and_then(|t| t.strip_suffix(']'))
            .and_then(|t| t.parse().ok())
        {
            into.insert(ino);
        }
    }
}

/// How long ago any TCP connection that one of `pids` has open last received or sent data
/// (the kernel's own clocks, in milliseconds); `None` when they have none, or the kernel's
/// socket table cannot be read here.
pub fn last_socket_traffic(pids: &[i32]) -> Option<Duration> {
    let mut inodes = HashSet::new();
    for &pid in pids {
        socket_inodes(pid, &mut inodes);
    }
    if inodes.is_empty() {
        return None;
    }
    let mut least: Option<u32> = None;
    for family in [libc::AF_INET, libc::AF_INET6] {
        for ms in tcp_idle_ms(family as u8, &inodes).unwrap_or_default() {
            least = Some(least.map_or(ms, |l| l.min(ms)));
        }
    }
    least.map(|ms| Duration::from_millis(ms.into()))
}

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_HDR: usize = 16;
/// `struct inet_diag_msg`: family, state, timer, retrans, the 48-byte socket id, expires,
/// rqueue, wqueue, uid, inode.
const INET_DIAG_MSG: usize = 72;
const INET_DIAG_MSG_INODE: usize = 68;
/// The `tcp_info` attribute, and `idiag_ext` asking for it.
const INET_DIAG_INFO: u16 = 2;
/// `tcpi_last_data_sent` and `tcpi_last_data_recv` in `struct tcp_info`.
const TCPI_LAST_DATA_SENT: usize = 44;
const TCPI_LAST_DATA_RECV: usize = 52;
const TCP_LISTEN: u32 = 10;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The dump request for every TCP socket of `family` but listening ones, with `tcp_info`.
fn request(family: u8) -> Vec<u8> {
    let mut r = Vec::with_capacity(NLMSG_HDR + 56);
    r.extend_from_slice(&((NLMSG_HDR + 56) as u32).to_ne_bytes());
    r.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    r.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    r.extend_from_slice(&1u32.to_ne_bytes());
    r.extend_from_slice(&0u32.to_ne_bytes());
    // struct inet_diag_req_v2: family, protocol, ext, pad, states, then a zero socket id.
    r.extend_from_slice(&[
        family,
        libc::IPPROTO_TCP as u8,
        1 << (INET_DIAG_INFO - 1),
        0,
    ]);
    r.extend_from_slice(&(!(1u32 << TCP_LISTEN)).to_ne_bytes());
    r.extend_from_slice(&[0u8; 48]);
    r
}

/// For each TCP socket of `family` whose inode is in `inodes`: milliseconds since it last
/// received or sent data.
fn tcp_idle_ms(family: u8, inodes: &HashSet<u32>) -> Option<Vec<u32>> {
    let sock = socket(
        AddressFamily::Netlink,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )
    .ok()?;
    send(
        std::os::fd::AsRawFd::as_raw_fd(&sock),
        &request(family),
        MsgFlags::empty(),
    )
    .ok()?;
    let mut found = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = loop {
            match recv(
                std::os::fd::AsRawFd::as_raw_fd(&sock),
                &mut buf,
                MsgFlags::empty(),
            ) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other.ok()?,
            }
        };
        if n == 0 {
            return Some(found);
        }
        let mut at = 0;
        while at + NLMSG_HDR <= n {
            let len = u32_at(&buf, at)? as usize;
            let kind = u16_at(&buf, at + 4)?;
            if len < NLMSG_HDR || at + len > n {
                return Some(found);
            }
            match kind {
                NLMSG_DONE => return Some(found),
                NLMSG_ERROR => return None,
                SOCK_DIAG_BY_FAMILY => {
                    let msg = &buf[at + NLMSG_HDR..at + len];
                    if let Some(ms) = idle_ms(msg, inodes) {
                        found.push(ms);
                    }
                }
                _ => {}
            }
            at += align4(len);
        }
    }
}

/// One `inet_diag_msg` with its attributes: the socket's idle time, if it is one of `inodes`
/// and carries `tcp_info`.
fn idle_ms(msg: &[u8], inodes: &HashSet<u32>) -> Option<u32> {
    if !inodes.contains(&u32_at(msg, INET_DIAG_MSG_INODE)?) {
        return None;
    }
    let mut at = INET_DIAG_MSG;
    while at + 4 <= msg.len() {
        let len = u16_at(msg, at)? as usize;
        let kind = u16_at(msg, at + 2)?;
        if len < 4 {
            return None;
        }
        if kind == INET_DIAG_INFO {
            let info = msg.get(at + 4..at + len)?;
            let sent = u32_at(info, TCPI_LAST_DATA_SENT)?;
            let received = u32_at(info, TCPI_LAST_DATA_RECV)?;
            return Some(sent.min(received));
        }
        at += align4(len);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn io_bytes_of_this_process_grow_as_it_reads() {
        let me = std::process::id() as i32;
        let before = io_bytes(me).expect("own /proc/self/io");
        let _ = std::fs::read("/proc/self/stat").unwrap();
        assert!(io_bytes(me).unwrap() > before);
    }

    #[test]
    fn a_fresh_connection_of_this_process_is_found_with_its_idle_time() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        server.write_all(b"hello").unwrap();
        let mut got = [0u8; 5];
        client.read_exact(&mut got).unwrap();
        let idle = last_socket_traffic(&[std::process::id() as i32]);
        // A kernel without sock_diag gives nothing; one with it must say "just now".
        if let Some(idle) = idle {
            assert!(idle < Duration::from_secs(60), "{idle:?}");
        }
    }
}
