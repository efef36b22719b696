//! The TCP segments of a pcap or pcapng file, one packet at a time.

use std::io::{BufRead, Read};
use std::net::{IpAddr, SocketAddr};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_file::DataLink;

use super::ImportError;

/// One packet of a TCP connection.
pub(super) struct Segment {
    pub(super) at_ms: u64,
    pub(super) from: SocketAddr,
    pub(super) to: SocketAddr,
    pub(super) seq: u32,
    pub(super) syn: bool,
    pub(super) ack: bool,
    /// The sender has nothing more to send.
    pub(super) fin: bool,
    /// The connection was reset.
    pub(super) rst: bool,
    pub(super) payload: Vec<u8>,
}

/// Hands every TCP segment of a pcap or pcapng file to `visit`, in capture order, one
/// packet at a time (a capture of any size is never held in memory); returns how many
/// packets were not TCP over IP.
pub(super) fn for_each_segment(
    capture: impl Read,
    mut visit: impl FnMut(Segment) -> Result<(), ImportError>,
) -> Result<usize, ImportError> {
    let bad = |e: &dyn std::fmt::Display| ImportError::NotACapture(e.to_string());
    let mut file = std::io::BufReader::new(capture);
    let pcapng = file
        .fill_buf()
        .map_err(|e| bad(&e))?
        .starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]);
    let mut skipped = 0;
    let mut push = |link: DataLink, at: std::time::Duration, data: &[u8]| match segment(link, at, data) {
        Some(s) => visit(s),
        None => {
            skipped += 1;
            Ok(())
        }
    };
    if pcapng {
        let mut reader = pcap_file::pcapng::PcapNgReader::new(file).map_err(|e| bad(&e))?;
        let mut links = Vec::new();
        while let Some(block) = reader.next_block() {
            match block.map_err(|e| bad(&e))? {
                pcap_file::pcapng::Block::InterfaceDescription(interface) => links.push(interface.linktype),
                pcap_file::pcapng::Block::EnhancedPacket(packet) => {
                    let link = links.get(packet.interface_id as usize).copied();
                    push(link.unwrap_or(DataLink::ETHERNET), packet.timestamp, &packet.data)?;
                }
                _ => {}
            }
        }
    } else {
        let mut reader = pcap_file::pcap::PcapReader::new(file).map_err(|e| bad(&e))?;
        let link = reader.header().datalink;
        while let Some(packet) = reader.next_packet() {
            let packet = packet.map_err(|e| bad(&e))?;
            push(link, packet.timestamp, &packet.data)?;
        }
    }
    Ok(skipped)
}

fn segment(link: DataLink, at: std::time::Duration, data: &[u8]) -> Option<Segment> {
    let sliced = match link {
        DataLink::ETHERNET => SlicedPacket::from_ethernet(data).ok()?,
        DataLink::LINUX_SLL => SlicedPacket::from_linux_sll(data).ok()?,
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => SlicedPacket::from_ip(data).ok()?,
        _ => return None,
    };
    let (source, destination) = match sliced.net? {
        NetSlice::Ipv4(ip) => (
            IpAddr::V4(ip.header().source_addr()),
            IpAddr::V4(ip.header().destination_addr()),
        ),
        NetSlice::Ipv6(ip) => (
            IpAddr::V6(ip.header().source_addr()),
            IpAddr::V6(ip.header().destination_addr()),
        ),
        _ => return None,
    };
    let TransportSlice::Tcp(tcp) = sliced.transport? else {
        return None;
    };
    Some(Segment {
        at_ms: at.as_millis() as u64,
        from: SocketAddr::new(source, tcp.source_port()),
        to: SocketAddr::new(destination, tcp.destination_port()),
        seq: tcp.sequence_number(),
        syn: tcp.syn(),
        ack: tcp.ack(),
        fin: tcp.fin(),
        rst: tcp.rst(),
        payload: tcp.payload().to_vec(),
    })
}
