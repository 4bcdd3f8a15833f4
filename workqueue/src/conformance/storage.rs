//! Seam cases: preconditions, generations and listing, which the queue rules rely on.

use super::*;

/// Creating a name that exists fails with a precondition error.
pub async fn storage_create_should_refuse_an_existing_name(f: Fixture) {
    let s = f.storage;
    s.put("a/b", &meta("1"), PutMode::Create)
        .await
        .expect("create");
    let err = s.put("a/b", &meta("2"), PutMode::Create).await.unwrap_err();
    assert!(matches!(err, StorageError::Precondition { .. }), "{err:?}");
    assert_eq!(s.get("a/b").await.unwrap().unwrap().metadata, meta("1"));
}

/// Replace and delete take effect only at the current generation (deletes: on backends with
/// strict deletes; the GCS emulator ignores their precondition).
pub async fn storage_pinned_writes_should_refuse_a_stale_generation(f: Fixture) {
    let s = f.storage;
    let g1 = s.put("x/k", &meta("1"), PutMode::Create).await.unwrap();
    let g2 = s
        .put("x/k", &meta("2"), PutMode::Replace(g1))
        .await
        .unwrap();
    assert_ne!(g1, g2);
    assert!(
        s.put("x/k", &meta("3"), PutMode::Replace(g1))
            .await
            .unwrap_err()
            .is_conflict()
    );
    assert!(matches!(
        s.delete("x/k", g1).await.unwrap_err(),
        StorageError::Precondition { .. }
    ));
    let object = s.get("x/k").await.unwrap().unwrap();
    assert_eq!((object.generation, object.metadata), (g2, meta("2")));
    s.delete("x/k", g2).await.unwrap();
    assert!(s.get("x/k").await.unwrap().is_none());
    assert!(matches!(
        s.delete("x/k", g2).await.unwrap_err(),
        StorageError::NotFound { .. }
    ));
    assert!(
        s.put("x/k", &meta("4"), PutMode::Replace(g2))
            .await
            .unwrap_err()
            .is_conflict()
    );
}

/// A re-created object never gets an old generation back, so stale pinned writes stay stale.
pub async fn storage_generations_should_never_be_reused(f: Fixture) {
    let s = f.storage;
    let mut seen = HashSet::new();
    for _ in 0..20 {
        let g = s.put("y/k", &meta("v"), PutMode::Create).await.unwrap();
        assert!(seen.insert(g), "generation {g:?} reused");
        s.delete("y/k", g).await.unwrap();
    }
}

/// Listing returns exactly the prefix's objects, in name order, page by page.
pub async fn storage_list_should_page_in_name_order_within_the_prefix(f: Fixture) {
    let s = f.storage;
    let names = ["p/c", "p/a", "p/b%20x", "p/é", "p/d/e", "q/a", "pa"];
    for name in names {
        s.put(name, &meta(name), PutMode::Create).await.unwrap();
    }
    let mut listed = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let page = s.list("p/", token.as_deref(), 2).await.unwrap();
        assert!(page.objects.len() <= 2);
        pages += 1;
        for object in page.objects {
            assert_eq!(object.metadata, meta(&object.name));
            listed.push(object.name);
        }
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert_eq!(listed, ["p/a", "p/b%20x", "p/c", "p/d/e", "p/é"]);
    assert!(pages >= 3);
    assert_eq!(list_all(s.as_ref(), "p/d").await.unwrap().len(), 1);
    assert!(list_all(s.as_ref(), "none/").await.unwrap().is_empty());
}
