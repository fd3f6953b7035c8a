//! Command-node failover: the writer's lease in NATS KV.

use std::time::Duration;

use tepai::bus::lease::{self, Claim, Claimant, Lost, RenewError};
use tokio_util::sync::CancellationToken;

use crate::nats_server::NatsServer;

async fn bucket(server: &NatsServer) -> async_nats::jetstream::kv::Store {
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    lease::open_bucket(&js, 1).await.unwrap()
}

#[tokio::test]
async fn the_lease_has_one_holder_and_passes_on_only_once_it_lapses() {
    let server = NatsServer::start();
    let kv = bucket(&server).await;
    let period = Duration::from_millis(600);
    let mut a = Claimant::new(kv.clone(), "a", period);
    let mut b = Claimant::new(kv.clone(), "b", period);

    let Claim::Taken(mut held) = a.try_take().await.unwrap() else {
        panic!("a free lease was not taken");
    };
    // While a renews, b never gets it, however long it watches.
    for _ in 0..8 {
        match b.try_take().await.unwrap() {
            Claim::Held { holder } => assert_eq!(holder.as_deref(), Some("a")),
            Claim::Taken(_) => panic!("b took a lease a was renewing"),
        }
        held.renew().await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // a stops renewing: b takes it once it has seen it unchanged for a period.
    let stop = CancellationToken::new();
    let taken = tokio::time::timeout(
        Duration::from_secs(10),
        b.take(Duration::from_millis(100), &stop),
    )
    .await
    .unwrap()
    .unwrap()
    .expect("b never took the lapsed lease");
    assert!(taken.revision() > held.revision());
    // a's next renewal is refused: it is deposed.
    assert_eq!(held.renew().await, Err(RenewError::Taken));
    // And a cannot take it back while b holds it.
    assert!(matches!(a.try_take().await.unwrap(), Claim::Held { .. }));
}

#[tokio::test]
async fn racing_claimants_on_a_free_lease_yield_one_holder() {
    let server = NatsServer::start();
    let kv = bucket(&server).await;
    let mut claims = Vec::new();
    for name in ["a", "b", "c", "d"] {
        let mut claimant = Claimant::new(kv.clone(), name, Duration::from_secs(5));
        claims.push(tokio::spawn(
            async move { claimant.try_take().await.unwrap() },
        ));
    }
    let mut taken = 0;
    for claim in claims {
        if matches!(claim.await.unwrap(), Claim::Taken(_)) {
            taken += 1;
        }
    }
    assert_eq!(taken, 1);
}

#[tokio::test]
async fn a_kept_lease_is_released_on_stop_and_reports_being_taken() {
    let server = NatsServer::start();
    let kv = bucket(&server).await;
    let period = Duration::from_millis(600);
    let mut a = Claimant::new(kv.clone(), "a", period);
    let mut b = Claimant::new(kv.clone(), "b", period);
    let Claim::Taken(held) = a.try_take().await.unwrap() else {
        panic!("a free lease was not taken");
    };
    let stop = CancellationToken::new();
    let kept = tokio::spawn(held.keep(stop.clone()));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(matches!(b.try_take().await.unwrap(), Claim::Held { .. }));
    stop.cancel();
    assert_eq!(kept.await.unwrap(), None);
    // Released: b takes it at its first look, without waiting a period.
    let Claim::Taken(held) = b.try_take().await.unwrap() else {
        panic!("a released lease was not taken at once");
    };
    let kept = tokio::spawn(held.keep(CancellationToken::new()));
    // Someone overwrites the key (an operator, a split brain): b hears it.
    kv.put(lease::LEASE_KEY, "{}".into()).await.unwrap();
    let lost = tokio::time::timeout(Duration::from_secs(10), kept)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lost, Some(Lost::Taken));
}
