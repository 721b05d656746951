//! The HTML of productpage: the book page and the index. Everything that
//! came from another service or from the user is escaped; stars are text
//! glyphs in the reviews' colour, so the version that answered can be told
//! from the page text alone (see the README's "Page markers").

use crate::error::FetchError;
use crate::model::{
    BookDetails, Product, Rating, ReviewsResponse, DETAILS_UNAVAILABLE, REVIEWS_UNAVAILABLE,
};
use crate::reviews::parse_star_color;

/// A full star.
pub const FULL_STAR: char = '★';
/// An empty star.
pub const EMPTY_STAR: char = '☆';

/// The page's stylesheet, served at `/static/bookinfo.css`.
pub const STYLESHEET: &str = "\
body { font-family: sans-serif; margin: 0; color: #222; }
.navbar { background: #222; color: #eee; padding: 0.6em 1em; display: flex; justify-content: space-between; align-items: center; }
.navbar a { color: #fff; }
.navbar .brand { font-weight: bold; text-decoration: none; }
.navbar form { margin: 0; }
main { max-width: 60em; margin: 0 auto; padding: 1em; }
h3.title { text-align: center; color: #337ab7; }
.row { display: flex; flex-wrap: wrap; gap: 2em; }
.row section { flex: 1 1 20em; }
h4 { text-align: center; color: #337ab7; }
table.details-table th { text-align: left; padding-right: 1em; }
blockquote.review { border-left: 4px solid #ddd; margin: 1em 0; padding: 0.3em 1em; }
.stars { font-size: 1.3em; letter-spacing: 0.1em; }
.served-by { color: #777; font-size: 0.85em; }
.error, .rating-error { color: #a94442; }
";

/// HTML-escapes `text` for element content and quoted attributes.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `stars` full stars then empty ones up to five (more than five count as
/// five).
pub fn star_glyphs(stars: u32) -> String {
    let full = stars.min(5) as usize;
    let mut out = String::new();
    out.extend(std::iter::repeat_n(FULL_STAR, full));
    out.extend(std::iter::repeat_n(EMPTY_STAR, 5 - full));
    out
}

/// The book page.
pub fn render_product_page(
    product: &Product,
    user: Option<&str>,
    details: &Result<BookDetails, FetchError>,
    reviews: &Result<ReviewsResponse, FetchError>,
) -> String {
    let mut html = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Simple Bookstore App</title>\n\
         <link rel=\"stylesheet\" href=\"static/bookinfo.css\">\n</head>\n<body>\n",
    );
    html.push_str(&navbar(user));
    html.push_str("<main>\n");
    html.push_str(&format!(
        "<h3 class=\"title\">{}</h3>\n<p class=\"summary\">Summary: {}</p>\n",
        escape_html(&product.title),
        // Our own catalogue's trusted HTML, as the original renders it.
        product.description_html
    ));
    html.push_str("<div class=\"row\">\n<section class=\"details\">\n");
    html.push_str(&details_section(details));
    html.push_str("</section>\n<section class=\"reviews\">\n");
    html.push_str(&reviews_section(reviews));
    html.push_str("</section>\n</div>\n</main>\n</body>\n</html>\n");
    html
}

/// The top bar: who is signed in, or the sign-in form.
fn navbar(user: Option<&str>) -> String {
    let right = match user {
        Some(user) => format!(
            "<span class=\"user\">Signed in as <b>{}</b> (<a href=\"logout\">sign out</a>)</span>",
            escape_html(user)
        ),
        None => "<form method=\"post\" action=\"login\" name=\"login_form\">\
                 <input type=\"text\" name=\"username\" placeholder=\"User Name\"> \
                 <input type=\"password\" name=\"passwd\" placeholder=\"Password\"> \
                 <button type=\"submit\">Sign in</button></form>"
            .to_string(),
    };
    format!("<nav class=\"navbar\"><a class=\"brand\" href=\"productpage\">BookInfo Sample</a>\n{right}\n</nav>\n")
}

fn details_section(details: &Result<BookDetails, FetchError>) -> String {
    let details = match details {
        Ok(details) => details,
        Err(_) => {
            return format!(
                "<h4>Error fetching product details!</h4>\n<p class=\"error\">{DETAILS_UNAVAILABLE}</p>\n"
            )
        }
    };
    let rows = [
        ("Author", details.author.clone()),
        ("Year", details.year.to_string()),
        ("Type", details.kind.clone()),
        ("Pages", details.pages.to_string()),
        ("Publisher", details.publisher.clone()),
        ("Language", details.language.clone()),
        ("ISBN-10", details.isbn_10.clone()),
        ("ISBN-13", details.isbn_13.clone()),
    ];
    let mut html = String::from("<h4>Book Details</h4>\n<table class=\"details-table\">\n");
    for (name, value) in rows {
        html.push_str(&format!(
            "<tr><th>{name}:</th><td>{}</td></tr>\n",
            escape_html(&value)
        ));
    }
    html.push_str("</table>\n");
    html
}

fn reviews_section(reviews: &Result<ReviewsResponse, FetchError>) -> String {
    let reviews = match reviews {
        Ok(reviews) => reviews,
        Err(_) => {
            return format!(
                "<h4>Error fetching product reviews!</h4>\n<p class=\"error\">{REVIEWS_UNAVAILABLE}</p>\n"
            )
        }
    };
    let mut html = String::from("<h4>Book Reviews</h4>\n");
    for review in &reviews.reviews {
        html.push_str(&format!(
            "<blockquote class=\"review\">\n<p>{}</p>\n<small>{}</small>\n",
            escape_html(&review.text),
            escape_html(&review.reviewer)
        ));
        match &review.rating {
            Some(Rating::Stars { stars, color }) => {
                // The colour came over the network: only a plain name may
                // reach the style attribute.
                let color = parse_star_color(color).unwrap_or_else(|_| "black".to_string());
                html.push_str(&format!(
                    "<span class=\"stars stars-{color}\" style=\"color: {color}\" title=\"{} out of 5 stars\">{}</span>\n",
                    stars.min(&5),
                    star_glyphs(*stars)
                ));
            }
            Some(Rating::Error { error }) => {
                html.push_str(&format!(
                    "<p class=\"rating-error\"><i>{}</i></p>\n",
                    escape_html(error)
                ));
            }
            None => {}
        }
        html.push_str("</blockquote>\n");
    }
    html.push_str(&served_by(reviews));
    html
}

/// "Reviews served by: reviews-v2", plus the pod when it says more.
fn served_by(reviews: &ReviewsResponse) -> String {
    let marker = if reviews.version.is_empty() {
        reviews.podname.clone()
    } else {
        format!("reviews-{}", reviews.version)
    };
    if marker.is_empty() {
        return String::new();
    }
    let pod = if !reviews.podname.is_empty() && reviews.podname != marker {
        format!(" <small>(pod {})</small>", escape_html(&reviews.podname))
    } else {
        String::new()
    };
    format!(
        "<p class=\"served-by\">Reviews served by: <span class=\"reviews-version\">{}</span>{pod}</p>\n",
        escape_html(&marker)
    )
}

/// The index page: what the app is made of, and a way in as a normal or a
/// test user, like the original's.
pub fn render_index() -> String {
    let services = [
        ("productpage", "details, reviews"),
        ("details", "-"),
        ("reviews", "ratings (v2 and v3)"),
        ("ratings", "-"),
    ];
    let mut rows = String::new();
    for (name, calls) in services {
        rows.push_str(&format!("<tr><td>{name}</td><td>{calls}</td></tr>\n"));
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>Simple Bookstore App</title>\n\
         <link rel=\"stylesheet\" href=\"static/bookinfo.css\">\n</head>\n<body>\n\
         <nav class=\"navbar\"><span class=\"brand\">BookInfo Sample</span></nav>\n<main>\n\
         <h3 class=\"title\">Hello! This is a simple bookstore application consisting of four services.</h3>\n\
         <table class=\"details-table\">\n<tr><th>service</th><th>calls</th></tr>\n{rows}</table>\n\
         <p>Click on one of the links below to auto generate a request to the backend as a real user or a tester:</p>\n\
         <p><a href=\"productpage?u=normal\">Normal user</a></p>\n\
         <p><a href=\"productpage?u=test\">Test user</a></p>\n\
         </main>\n</body>\n</html>\n"
    )
}
