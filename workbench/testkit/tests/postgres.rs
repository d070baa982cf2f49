use sqlx::Connection as _;

#[tokio::test]
async fn fresh_databases_are_distinct_and_connectable() {
    let postgres = testkit::postgres().await;
    let a = postgres.create_database("kit").await;
    let b = postgres.create_database("kit").await;
    assert_ne!(a, b);
    for url in [&a, &b] {
        let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
        let (one,): (i32,) = sqlx::query_as("SELECT 1")
            .fetch_one(&mut connection)
            .await
            .unwrap();
        assert_eq!(one, 1);
    }
}
