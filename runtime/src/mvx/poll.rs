//! `poll_oneoff`'s userdata: a value each variant puts in its own subscriptions (wasi-libc puts a
//! pointer there) and gets back in each event. It is no part of what the variants must agree on,
//! and a follower must get back its own values, not the master's.

use crate::wasi::calls::Content;

/// The size of a subscription record, whose userdata is its first 8 bytes.
const SUBSCRIPTION: usize = 48;
/// The size of an event record, whose userdata is its first 8 bytes.
const EVENT: usize = 32;

/// Whether `name` is the function whose records carry userdata.
pub(crate) fn carries_userdata(name: &str) -> bool {
    name == "poll_oneoff"
}

/// The subscriptions of a `poll_oneoff`'s inputs with every userdata zeroed, for comparing.
pub(crate) fn without_userdata(inputs: &[Content]) -> Vec<Content> {
    inputs
        .iter()
        .map(|c| match c {
            Content::Bytes(b) => {
                let mut b = b.clone();
                for record in b.chunks_mut(SUBSCRIPTION) {
                    let n = record.len().min(8);
                    record[..n].fill(0);
                }
                Content::Bytes(b)
            }
            other => other.clone(),
        })
        .collect()
}

fn userdata(record: &[u8]) -> Option<[u8; 8]> {
    record.get(..8).and_then(|u| u.try_into().ok())
}

/// Rewrites the userdata of each event in `events` (the master's, applied to a follower) to the
/// follower's own: an event carrying the userdata of the master's subscription k gets that of
/// the follower's subscription k. `master` and `follower` are the subscription bytes.
pub(crate) fn translate_userdata(events: &mut [u8], master: &[u8], follower: &[u8]) {
    let masters: Vec<[u8; 8]> = master.chunks(SUBSCRIPTION).filter_map(userdata).collect();
    let followers: Vec<[u8; 8]> = follower.chunks(SUBSCRIPTION).filter_map(userdata).collect();
    for event in events.chunks_mut(EVENT) {
        let Some(theirs) = userdata(event) else {
            continue;
        };
        let mine = masters
            .iter()
            .position(|u| *u == theirs)
            .and_then(|k| followers.get(k));
        if let Some(mine) = mine {
            event[..8].copy_from_slice(mine);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscriptions(userdata: &[u64], timeout: u64) -> Vec<u8> {
        let mut b = Vec::new();
        for u in userdata {
            let mut record = [0u8; SUBSCRIPTION];
            record[..8].copy_from_slice(&u.to_le_bytes());
            record[24..32].copy_from_slice(&timeout.to_le_bytes());
            b.extend_from_slice(&record);
        }
        b
    }

    #[test]
    fn userdata_is_neither_compared_nor_copied() {
        let master = subscriptions(&[0x1000, 0x2000], 5);
        let follower = subscriptions(&[0x5000, 0x6000], 5);
        assert_eq!(
            without_userdata(&[Content::Bytes(master.clone())]),
            without_userdata(&[Content::Bytes(follower.clone())])
        );
        let other_timeout = subscriptions(&[0x5000, 0x6000], 6);
        assert_ne!(
            without_userdata(&[Content::Bytes(master.clone())]),
            without_userdata(&[Content::Bytes(other_timeout)])
        );
        // The master's one event answers its second subscription.
        let mut events = vec![0u8; EVENT];
        events[..8].copy_from_slice(&0x2000u64.to_le_bytes());
        events[10] = 1;
        translate_userdata(&mut events, &master, &follower);
        assert_eq!(&events[..8], &0x6000u64.to_le_bytes());
        assert_eq!(events[10], 1);
    }
}
