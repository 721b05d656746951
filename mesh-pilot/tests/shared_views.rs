//! Sharing changes no byte: for every golden case, each proxy's resources
//! from one push cache (shared families built once, its own per proxy)
//! equal its golden translation, packed.

mod cases;

use std::collections::HashSet;
use std::sync::Arc;

use mesh_pilot::push::PushContext;
use mesh_pilot::registry::Registry;
use mesh_pilot::translate;
use mesh_pilot::translate::scope::View;
use mesh_pilot::xds::cache::PushCache;
use mesh_pilot::xds::Resources;

#[test]
fn cached_views_of_the_golden_cases_equal_their_translation() {
    for case in cases::ALL {
        let config = case.config();
        let registry = Registry::build(&config);
        let ctx = Arc::new(PushContext::new(Arc::new(config.clone())));
        let cache = PushCache::new(ctx.clone());
        // One cluster build per distinct view of the services (Sidecar
        // resources and exportTo make views differ).
        let views: HashSet<_> = case
            .nodes
            .iter()
            .map(|n| View::of(&ctx, &n.proxy()).services)
            .collect();
        // Each proxy twice: the second time every shared family is a hit.
        for node in case.nodes.iter().chain(case.nodes) {
            let proxy = node.proxy();
            let want = Resources::pack(&translate::generate(&config, &registry, &proxy));
            assert!(
                cache.resources(&proxy) == want,
                "{}: {} differs from its translation",
                case.name,
                node.id
            );
        }
        let stats = cache.stats();
        assert_eq!(
            stats.shared["clusters"].builds,
            views.len() as u64,
            "{}",
            case.name
        );
        assert_eq!(stats.own_builds, 2 * case.nodes.len() as u64);
    }
}
